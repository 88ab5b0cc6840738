/**
 * The `tsgi` command line, as a function: `main(args, io)` resolves with the exit code. `bin/tsgi.js`
 * calls it with `process.argv.slice(2)`; tests call it directly or spawn the launcher.
 *
 * - `tsgi serve path/to/wsgi.ts[:attr]` — serves an application (gunicorn's `module:app`);
 * - `tsgi runserver [[host:]port]` — the development server for the site whose settings module
 *   `TSGI_SETTINGS_MODULE` (or `--settings`) names: it serves the settings' `WSGI_APPLICATION`, logs
 *   every request and restarts when a file changes (Django's runserver);
 * - `tsgi startproject NAME [DIR]` — writes a runnable site.
 *
 * A server prints one line, `tsgi: serving <url>`, on stdout once it listens. SIGTERM or SIGINT (or
 * `io.signal` aborting) stops accepting connections, lets in-flight requests finish for at most the
 * graceful timeout, and exits 0; a second signal exits at once. Every failure is one line on stderr
 * starting with `tsgi:`; usage errors add a `--help` hint and exit 2, other failures exit 1.
 */
import cluster from 'node:cluster';
import { readFileSync, realpathSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isAccessLog } from '../middleware/logging.ts';
import { createHandler } from './handler.ts';
import { LoadError, loadApplication, locateModule, oneLine, parseApplicationSpec } from './loader.ts';
import { isReloadChild, runServer, type ServerIO, type ServerPlan, stopSignal } from './runner.ts';
import { ImproperlyConfigured, loadSettings, SETTINGS_ENV } from './settings.ts';
import { isProjectName, startProject } from './startproject.ts';
import { type Output, runReloader, runWorkers } from './supervisor.ts';
import type { Application } from './types.ts';

/** Where `main()` reads and writes; every field defaults to the process's own. */
export interface CliIO extends ServerIO {
  env?: Record<string, string | undefined>;
  cwd?: string;
}

const LAUNCHER = fileURLToPath(new URL('../bin/tsgi.js', import.meta.url));
const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const HELP = `Usage: tsgi <command> [options]

Commands:
  serve MODULE[:ATTR]        serve the application MODULE exports as ATTR (default: application,
                             else the default export; a function or an object with fetch())
  runserver [[HOST:]PORT]    development server for the site whose settings module
                             $${SETTINGS_ENV} names: debug, access log, reload on change
  startproject NAME [DIR]    write a runnable site (settings.ts, wsgi.ts, app.ts) into DIR (default ./NAME)

Options of serve:
  -b, --bind HOST:PORT       where to listen (default 127.0.0.1:8000)
      --host HOST            interface to listen on (default 127.0.0.1)
  -p, --port PORT            port to listen on, 0 for any free one (default 8000)
  -w, --workers N            worker processes (default $WEB_CONCURRENCY or 1); dead ones are replaced
      --graceful-timeout S   seconds in-flight requests get to finish on SIGTERM (default 30)
      --keep-alive-timeout S seconds an idle keep-alive connection stays open (default 5)
      --access-log           write one line per request
      --reload               restart when a file under MODULE's directory changes (development only)

Options of runserver:
      --settings MODULE      the settings module (default $${SETTINGS_ENV})
      --noreload             do not restart when files change

  -h, --help                 show this help
  -v, --version              show the version
`;

/** A mistake in the command line: reported with a `--help` hint, exit code 2. */
class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Runs the `tsgi` command line with `args` (without `node` and the script) and resolves with the exit
 * code. Servers resolve once they have stopped.
 *
 * @example
 * const code = await main(['startproject', 'mysite', '/tmp/mysite']);
 * const controller = new AbortController();
 * const serving = main(['serve', '/tmp/mysite/wsgi.ts', '--port', '0'], { signal: controller.signal });
 * controller.abort(); // drains and stops; `await serving` is 0
 */
export async function main(args: string[], io: CliIO = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  try {
    const [command, ...rest] = args;
    switch (command) {
      case undefined:
        stderr.write(HELP);
        return 2;
      case '-h':
      case '--help':
      case 'help':
        (io.stdout ?? process.stdout).write(HELP);
        return 0;
      case '-v':
      case '--version':
        (io.stdout ?? process.stdout).write(`tsgi ${VERSION}\n`);
        return 0;
      case 'serve':
        return await serveCommand(rest, io);
      case 'runserver':
        return await runserverCommand(rest, io);
      case 'startproject':
        return await startprojectCommand(rest, io);
      default:
        throw new UsageError(
          command.startsWith('-') ? `unknown option '${command}'` : `unknown command '${command}'`,
        );
    }
  } catch (error) {
    if (error instanceof UsageError) {
      stderr.write(`tsgi: ${error.message} (run 'tsgi --help' for usage)\n`);
      return 2;
    }
    // tsgi's own errors (LoadError, ImproperlyConfigured…) say what is wrong in a line that starts
    // with 'tsgi: '; anything else is shown by name and message, never as a stack.
    const ours = error instanceof Error && error.message.startsWith('tsgi: ');
    stderr.write(`${ours ? oneLine(error.message) : `tsgi: ${oneLine(error)}`}\n`);
    return 1;
  }
}

async function serveCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parsing(() =>
    parseArgs({
      args,
      allowPositionals: true,
      options: {
        bind: { type: 'string', short: 'b' },
        host: { type: 'string' },
        port: { type: 'string', short: 'p' },
        workers: { type: 'string', short: 'w' },
        'graceful-timeout': { type: 'string' },
        'keep-alive-timeout': { type: 'string' },
        'access-log': { type: 'boolean' },
        reload: { type: 'boolean' },
        help: HELP_OPTION,
      },
    }),
  );
  if (values.help) return help(io);
  const [spec, extra] = positionals;
  if (spec === undefined)
    throw new UsageError('serve needs the application to serve: tsgi serve path/to/wsgi.ts[:attr]');
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
  if (values.bind !== undefined && (values.host !== undefined || values.port !== undefined)) {
    throw new UsageError('use either --bind or --host/--port, not both');
  }
  const env = io.env ?? process.env;
  const bind = values.bind === undefined ? {} : parseAddress(values.bind, '--bind');
  const plan: ServerPlan = {
    host: bind.host ?? values.host ?? '127.0.0.1',
    port: bind.port ?? (values.port === undefined ? 8000 : parsePort(values.port, '--port')),
    gracefulTimeoutMs: seconds(values['graceful-timeout'], '--graceful-timeout') ?? 30_000,
    keepAliveTimeoutMs: seconds(values['keep-alive-timeout'], '--keep-alive-timeout'),
    accessLog: values['access-log'] === true,
  };
  let workers = values.workers === undefined ? undefined : count(values.workers, '--workers');
  if (values.reload && workers !== undefined && workers > 1) {
    throw new UsageError('--reload runs a single process: it cannot be used with --workers');
  }
  workers ??= env.WEB_CONCURRENCY ? count(env.WEB_CONCURRENCY, 'WEB_CONCURRENCY') : 1;
  const cwd = io.cwd ?? process.cwd();
  const load = (): Promise<Application> => loadApplication(spec, { cwd });

  if (isReloadChild() || cluster.isWorker) return runServer(load, plan, io);
  // Fail on a missing module here, once, rather than in every child.
  const file = locateModule(parseApplicationSpec(spec).module, { cwd });
  if (values.reload) {
    const dir = file === undefined ? cwd : dirname(file);
    return supervised(io, (common) => runReloader({ ...relaunch('serve', args), ...common, dir, env }));
  }
  if (workers > 1) {
    const gracefulTimeoutMs = plan.gracefulTimeoutMs;
    return supervised(io, (common) =>
      runWorkers({ ...relaunch('serve', args), ...common, count: workers, gracefulTimeoutMs, env }),
    );
  }
  return runServer(load, plan, io);
}

async function runserverCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parsing(() =>
    parseArgs({
      args,
      allowPositionals: true,
      options: {
        settings: { type: 'string' },
        noreload: { type: 'boolean' },
        help: HELP_OPTION,
      },
    }),
  );
  if (values.help) return help(io);
  const [addrport, extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
  const address = addrport === undefined ? {} : parseAddress(addrport, 'runserver');
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
  // Django's runserver logs every request; a site whose MIDDLEWARE already has logging() is not
  // logged twice.
  const { MIDDLEWARE } = await loadSettings({ settings, env, cwd });
  const plan: ServerPlan = {
    host: address.host ?? '127.0.0.1',
    port: address.port ?? 8000,
    gracefulTimeoutMs: 30_000,
    keepAliveTimeoutMs: undefined,
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
  try {
    return await loadApplication(spec, { cwd: settings.url ? dirname(fileURLToPath(settings.url)) : cwd });
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

async function startprojectCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parsing(() =>
    parseArgs({ args, allowPositionals: true, options: { help: HELP_OPTION } }),
  );
  if (values.help) return help(io);
  const [name, dir, extra] = positionals;
  if (name === undefined)
    throw new UsageError('startproject needs a project name: tsgi startproject NAME [DIR]');
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
  if (!isProjectName(name)) {
    throw new UsageError(
      `'${name}' is not a valid project name: use letters, digits, '-' and '_', starting with a letter`,
    );
  }
  const project = await startProject(name, dir, { cwd: io.cwd ?? process.cwd(), version: VERSION });
  (io.stdout ?? process.stdout).write(
    `tsgi: created ${name} in ${project.dir}\n` +
      `  serve it:       tsgi serve ${project.dir}/wsgi.ts\n` +
      `  or develop it:  ${SETTINGS_ENV}=${project.dir}/settings.ts tsgi runserver\n`,
  );
  for (const note of project.notes) (io.stderr ?? process.stderr).write(`tsgi: note: ${note}\n`);
  return 0;
}

/** How a supervisor runs this command again in a child. */
function relaunch(command: string, args: string[]): { exec: string; args: string[]; execArgv: string[] } {
  // Node options given to the launcher (--max-old-space-size…) go to the children too; a test
  // runner's own options do not.
  const main = process.argv[1];
  const fromLauncher = main !== undefined && realpathSync(main) === realpathSync(LAUNCHER);
  return { exec: LAUNCHER, args: [command, ...args], execArgv: fromLauncher ? process.execArgv : [] };
}

/** Runs a supervisor with a stop signal of its own, removed once it is done. */
async function supervised(
  io: CliIO,
  run: (common: { stop: Promise<unknown>; stdout: Output; stderr: Output; cwd: string }) => Promise<number>,
): Promise<number> {
  const stop = stopSignal(io);
  try {
    return await run({
      stop: stop.stopped,
      stdout: io.stdout ?? process.stdout,
      stderr: io.stderr ?? process.stderr,
      cwd: io.cwd ?? process.cwd(),
    });
  } finally {
    stop.dispose();
  }
}

function help(io: CliIO): number {
  (io.stdout ?? process.stdout).write(HELP);
  return 0;
}

const HELP_OPTION = { type: 'boolean', short: 'h' } as const;

/** Runs parseArgs, turning its errors into one-line usage errors. */
function parsing<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const option = /'(?:-\w, )?(--?[\w-]+)/.exec(message)?.[1] ?? '';
    switch ((error as { code?: string }).code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UsageError(`unknown option '${option}'`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        throw new UsageError(
          message.includes('argument missing')
            ? `${option} needs a value`
            : `${option} does not take a value`,
        );
      default:
        throw new UsageError(message);
    }
  }
}

/** `HOST:PORT`, `[v6]:PORT`, `:PORT`, `PORT` or `HOST`. */
function parseAddress(text: string, what: string): { host?: string; port?: number } {
  if (text.startsWith('unix:'))
    throw new UsageError(`${what}: unix sockets are not supported, use HOST:PORT`);
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*))(?::([^:]*))?$/.exec(text);
  if (match === null) {
    if (isIPv6(text)) return { host: text };
    throw new UsageError(`${what}: '${text}' is not HOST:PORT`);
  }
  const host = match[1] ?? match[2];
  const port = match[3];
  if (port === undefined && /^\d+$/.test(host ?? '')) return { port: parsePort(host!, what) };
  return {
    ...(host ? { host } : {}),
    ...(port === undefined ? {} : { port: parsePort(port, what) }),
  };
}

function parsePort(text: string, what: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`${what}: '${text}' is not a port (0-65535)`);
  return port;
}

function count(text: string, what: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : 0;
  if (value < 1) throw new UsageError(`${what} must be a whole number of at least 1, got '${text}'`);
  return value;
}

/** Seconds given on the command line, in ms. */
function seconds(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const value = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isNaN(value)) throw new UsageError(`${what} must be a number of seconds, got '${text}'`);
  return value * 1000;
}
