/** What `tsgi --help` and `tsgi --version` print. */
import { readFileSync } from 'node:fs';
import { SETTINGS_ENV } from '../src/settings.ts';
import { PACKAGE_ROOT } from './launcher.ts';

/** The installed tsgi's version. */
export const VERSION = (
  JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as { version: string }
).version;

export const HELP = `Usage: tsgi <command> [options]

Commands:
  serve MODULE[:ATTR]        serve the application MODULE exports as ATTR (default: application,
                             else the default export; a function or an object with fetch())
  runserver [[HOST:]PORT]    development server for the site whose settings module
                             $${SETTINGS_ENV} names: debug, access log, reload on change
  startproject NAME [DIR]    write a runnable site (package.json, settings.ts, wsgi.ts, app.ts)
                             into DIR (default ./NAME)

Options of serve:
  -b, --bind HOST:PORT       where to listen (default 127.0.0.1:8000; 0.0.0.0:$PORT when $PORT is set)
      --host HOST            interface to listen on (default 127.0.0.1, or 0.0.0.0 when $PORT is set)
  -p, --port PORT            port to listen on, 0 for any free one (default $PORT, else 8000)
  -w, --workers N            worker processes (default $WEB_CONCURRENCY or 1); dead ones are replaced
      --graceful-timeout S   seconds in-flight requests get to finish on SIGTERM (default 30)
      --keep-alive-timeout S seconds an idle keep-alive connection stays open (default 5)
      --access-log           write one line per request
      --no-fast-response     leave the global Response alone (slower; for code that needs undici's own)
      --reload               restart when a file under MODULE's directory changes (development only)

Options of runserver:
      --settings MODULE      the settings module (default $${SETTINGS_ENV})
      --noreload             do not restart when files change
                             [HOST:]PORT defaults to 127.0.0.1:$PORT when $PORT is set, else 127.0.0.1:8000

Common options:
      --verbose              when the site fails to load, print the whole stack, not one line
  -h, --help                 show this help
  -v, --version              show the version

A site written in TypeScript (.ts, .mts, .cts) is loaded through tsx; a .js or .mjs site needs nothing
but Node.
`;
