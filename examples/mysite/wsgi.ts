/**
 * The example site's entry point, what servers load: `tsgi serve examples/mysite/wsgi.ts`.
 *
 * It builds the site from the settings module named by TSGI_SETTINGS_MODULE, else ./settings.ts,
 * then wraps it in middleware by hand, WSGI style.
 */
import { type Application, getWsgiApplication } from 'tsgi';
import { helloWorld } from 'tsgi/middleware';

export let application: Application = await getWsgiApplication({
  settings: process.env.TSGI_SETTINGS_MODULE ?? new URL('./settings.ts', import.meta.url),
});
application = helloWorld()(application);
