/**
 * `tsgi runserver [[HOST:]PORT]`: Django's development server. It serves the site whose settings
 * module `--settings` or `$TSGI_SETTINGS_MODULE` names (its `WSGI_APPLICATION`, else a handler built
 * from `APP`, `MIDDLEWARE` and `DEBUG`), logs every request, and restarts when a file under the
 * settings' folder changes (`--noreload` to not). It listens on 127.0.0.1, on `$PORT` when that is
 * set and no port is given, else on 8000. It takes serve's timeout and limit flags, with the same
 * defaults (limits.ts); it has no workers, so no heartbeat. Not for production: use `tsgi serve`.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isAccessLog } from '../middleware/logging.ts';
import { createHandler } from '../src/handler.ts';
import { LoadError, loadApplication, locateModule, parseApplicationSpec } from '../src/loader.ts';
import { ImproperlyConfigured, loadSettings, SETTINGS_ENV } from '../src/settings.ts';
import type { Application } from '../src/types.ts';
import { envPort, HELP_OPTION, parseAddress, parsing, UsageError, VERBOSE_OPTION } from './args.ts';
import { relaunch, supervised } from './launcher.ts';
import { LIMIT_OPTIONS, readLimits } from './limits.ts';
import type { CliIO } from './main.ts';
import { isReloadChild, runServer, type ServerPlan } from './runner.ts';
import { runReloader } from './supervisor.ts';
import { supportTypeScript } from './typescript.ts';
import { HELP } from './usage.ts';

export async function runserverCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parsing(() =>
    parseArgs({
      args,
      allowPositionals: true,
      options: {
        settings: { type: 'string' },
        noreload: { type: 'boolean' },
        ...LIMIT_OPTIONS,
        verbose: VERBOSE_OPTION,
        help: HELP_OPTION,
      },
    }),
  );
  if (values.help) {
    (io.stdout ?? process.stdout).write(HELP);
    return 0;
  }
  const [addrport, extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
  const address = addrport === undefined ? {} : parseAddress(addrport, 'runserver');
  const limits = readLimits(values);
  const env = io.env ?? process.env;
  const cwd = io.cwd ?? process.cwd();
  const named = values.settings ?? env[SETTINGS_ENV];
  if (named === undefined || named === '') {
    throw new ImproperlyConfigured(
      `tsgi: runserver needs a settings module: set ${SETTINGS_ENV}=path/to/settings.ts or pass --settings`,
      '',
      SETTINGS_ENV,
    );
  }
  const file = locateModule(named, {
    cwd,
    kind: `settings module${values.settings ? '' : ` (named by ${SETTINGS_ENV})`}`,
  });
  const settings = file ?? named;
  if (values.noreload !== true && !isReloadChild()) {
    const dir = file === undefined ? cwd : dirname(file);
    return supervised(io, (common) =>
      runReloader({
        ...relaunch('runserver', args),
        ...common,
        dir,
        env: { ...env, [SETTINGS_ENV]: settings },
      }),
    );
  }
  // The site's own code (wsgi.ts) reads the variable too, as Django's --settings sets it.
  process.env[SETTINGS_ENV] = settings;
  await supportTypeScript(settings);
  // Django's runserver logs every request; a site whose MIDDLEWARE already has logging() is not
  // logged twice.
  const { MIDDLEWARE } = await loadSettings({ settings, env, cwd });
  const plan: ServerPlan = {
    host: address.host ?? '127.0.0.1',
    port: address.port ?? envPort(env) ?? 8000,
    limits,
    accessLog: !MIDDLEWARE.some(isAccessLog),
  };
  return runServer(() => loadSite(settings, env, cwd), plan, io);
}

/** The site runserver serves: the settings' WSGI_APPLICATION, else a handler built from them. */
async function loadSite(
  settingsModule: string,
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<Application> {
  const settings = await loadSettings({ settings: settingsModule, env, cwd });
  const spec = settings.WSGI_APPLICATION;
  if (spec === undefined)
    return createHandler(settings.APP, { middleware: settings.MIDDLEWARE, debug: settings.DEBUG });
  const base = settings.url ? dirname(fileURLToPath(settings.url)) : cwd;
  try {
    await supportTypeScript(locateModule(parseApplicationSpec(spec).module, { cwd: base }));
    return await loadApplication(spec, { cwd: base });
  } catch (error) {
    if (!(error instanceof LoadError)) throw error;
    throw new ImproperlyConfigured(
      `tsgi: WSGI_APPLICATION '${spec}' of settings module '${settings.module}': ${error.message.replace(/^tsgi: /, '')}`,
      settings.module,
      'WSGI_APPLICATION',
      { cause: error },
    );
  }
}
