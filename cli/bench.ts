/**
 * `tsgi bench [MODULE[:ATTR]] [--settings MODULE]`: what the user's own stack costs, layer by layer,
 * measured in this process with no sockets (bench-run.ts says how; bench-report.ts what is printed).
 *
 * What it benches, loaded as `tsgi serve` and `tsgi runserver` load it:
 * - `MODULE[:ATTR]`, a wsgi.ts: the application it exports. A handler made by `createHandler()` or
 *   `getWsgiApplication()` is taken apart (`stackOf()`: its application, middleware, bus, debug); any
 *   other application (a handler wrapped in more middleware by hand, an `export default { fetch }`) is
 *   benched as one layer-less application inside a handler, as `tsgi serve` would wrap it, and the
 *   output says so. With `--settings`, `$TSGI_SETTINGS_MODULE` is set to it first, for the wsgi.ts to
 *   read (as runserver does).
 * - `--settings MODULE` alone (or `$TSGI_SETTINGS_MODULE`): the settings' `APP` inside their
 *   `MIDDLEWARE`, what `getWsgiApplication()` builds; what the `WSGI_APPLICATION` file adds around it
 *   is not included (the output says so; bench that file to include it).
 *
 * The request: `--method` (default GET), `--path` (default `/`, a query string allowed) and
 * `--header NAME:VALUE` (repeatable; a `Host` header also sets the URL's host, else 127.0.0.1). It
 * has no body. Each row gets `--time` seconds (default 0.5). As `tsgi serve` does, the global
 * `Response` is tsgi's FastResponse while measuring (`--no-fast-response`: undici's own).
 *
 * While measuring, what the site writes to this process's stdout and stderr (an access log, a
 * receiver's console.log) is dropped, when the report itself goes there: it would bury the table,
 * and timing a terminal's scrolling measures the terminal. Its cost up to the write is still counted;
 * the output says how many writes were dropped.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { HandlerStack } from '../src/handler.ts';
import { stackOf } from '../src/handler.ts';
import { loadApplication, locateModule, parseApplicationSpec } from '../src/loader.ts';
import { loadSettings, SETTINGS_ENV } from '../src/settings.ts';
import { signals as defaultSignals } from '../src/signals.ts';
import type { Handler } from '../src/types.ts';
import { HELP_OPTION, parsing, seconds, UsageError, VERBOSE_OPTION } from './args.ts';
import { type BenchReport, benchJson, benchTable } from './bench-report.ts';
import { runBench } from './bench-run.ts';
import type { CliIO } from './main.ts';
import { supportTypeScript } from './typescript.ts';
import { HELP } from './usage.ts';

/** A header field name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export async function benchCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parsing(() =>
    parseArgs({
      args,
      allowPositionals: true,
      options: {
        settings: { type: 'string' },
        method: { type: 'string', short: 'X' },
        path: { type: 'string' },
        header: { type: 'string', short: 'H', multiple: true },
        time: { type: 'string' },
        json: { type: 'boolean' },
        'no-fast-response': { type: 'boolean' },
        verbose: VERBOSE_OPTION,
        help: HELP_OPTION,
      },
    }),
  );
  const stdout = io.stdout ?? process.stdout;
  if (values.help) {
    stdout.write(HELP);
    return 0;
  }
  const [spec, extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
  const timePerRowMs = seconds(values.time, '--time') ?? 500;
  if (!(timePerRowMs > 0)) throw new UsageError(`--time must be more than 0 seconds, got '${values.time}'`);
  const request = benchRequest(values.method ?? 'GET', values.path ?? '/', values.header ?? []);
  const env = io.env ?? process.env;
  const target = await loadTarget(spec, values.settings, env, io.cwd ?? process.cwd());
  const fastResponse = values['no-fast-response'] !== true;

  const stderr = io.stderr ?? process.stderr;
  if ((stderr as { isTTY?: boolean }).isTTY) {
    const rows = target.stack.middleware.length + 3;
    stderr.write(
      `tsgi: bench: measuring ${rows} rows, about ${((rows * timePerRowMs) / 1000).toFixed(1)} s…\n`,
    );
  }
  const quiet = [
    ...(stdout === process.stdout ? [silence(process.stdout, 'stdout')] : []),
    ...(stderr === process.stderr ? [silence(process.stderr, 'stderr')] : []),
  ];
  let measurement: BenchReport['measurement'];
  try {
    measurement = await runBench({ ...target, request, timePerRowMs, fastResponse });
  } finally {
    // An access log writes on the next turn of the event loop: let that go where the rest went.
    if (quiet.length > 0) await nextTurn();
    for (const muted of quiet) {
      const writes = muted.restore();
      if (writes > 0) {
        target.notes.push(
          `the site wrote to ${muted.name} ${writes} times while it was measured (an access log? a receiver's console.log?); that output was dropped, its cost up to the write is counted`,
        );
      }
    }
  }
  const report: BenchReport = {
    target: target.target,
    kind: target.kind,
    notes: target.notes,
    request,
    measurement,
    timePerRowMs,
    fastResponse,
  };
  stdout.write(values.json ? benchJson(report) : benchTable(report));
  return 0;
}

/** What to bench: the stack's parts, the site's own handler when it exported one, and notes. */
interface Target {
  target: string;
  stack: HandlerStack;
  handler?: Handler;
  kind: BenchReport['kind'];
  notes: string[];
}

async function loadTarget(
  spec: string | undefined,
  settingsFlag: string | undefined,
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<Target> {
  const named = settingsFlag ?? env[SETTINGS_ENV];
  const kind = `settings module${settingsFlag === undefined ? ` (named by ${SETTINGS_ENV})` : ''}`;
  const settingsFile = named ? (locateModule(named, { cwd, kind }) ?? named) : undefined;
  if (spec !== undefined) {
    // The site's wsgi.ts reads the variable, as it does under runserver --settings.
    if (settingsFlag !== undefined) process.env[SETTINGS_ENV] = settingsFile;
    await supportTypeScript(locateModule(parseApplicationSpec(spec).module, { cwd }), settingsFile);
    const application = await loadApplication(spec, { cwd });
    const stack = stackOf(application);
    if (stack !== undefined) {
      const notes = stackOf(stack.application)
        ? [
            'the application inside this handler is a handler itself: its own middleware and receivers are in the bare application row',
          ]
        : [];
      return { target: spec, stack, handler: application as Handler, kind: 'handler', notes };
    }
    return {
      target: spec,
      stack: { application, middleware: [], signals: defaultSignals, debug: false },
      kind: 'application',
      notes: [
        `${spec} exports a plain application, not a handler made by createHandler() or getWsgiApplication() (a handler wrapped in middleware by hand is one too), so its layers cannot be told apart: it was benched as one application, inside the handler tsgi serve would give it`,
      ],
    };
  }
  if (settingsFile === undefined) {
    throw new UsageError(
      `bench needs the site to measure: tsgi bench path/to/wsgi.ts[:attr], or --settings path/to/settings.ts (or set ${SETTINGS_ENV})`,
    );
  }
  await supportTypeScript(settingsFile);
  const settings = await loadSettings({ settings: settingsFile, env, cwd });
  const notes =
    settings.WSGI_APPLICATION === undefined
      ? []
      : [
          `benched APP inside MIDDLEWARE, as getWsgiApplication() builds it; whatever WSGI_APPLICATION '${settings.WSGI_APPLICATION}' adds around it is not included (bench that file to include it)`,
        ];
  return {
    target: named!,
    stack: {
      application: settings.APP,
      middleware: settings.MIDDLEWARE,
      signals: defaultSignals,
      debug: settings.DEBUG,
    },
    kind: 'settings',
    notes,
  };
}

/** The request every row is driven with, from --method, --path and --header. */
function benchRequest(method: string, path: string, fields: string[]): Request {
  if (!TOKEN.test(method)) throw new UsageError(`--method: '${method}' is not an HTTP method`);
  if (!path.startsWith('/')) throw new UsageError(`--path must start with '/', got '${path}'`);
  const headers = new Headers();
  for (const field of fields) {
    const colon = field.indexOf(':');
    const name = field.slice(0, colon);
    if (colon < 1 || !TOKEN.test(name)) {
      throw new UsageError(
        `--header: '${field}' is not NAME:VALUE (for example --header accept-encoding:gzip)`,
      );
    }
    try {
      headers.append(name, field.slice(colon + 1).trim());
    } catch {
      throw new UsageError(`--header: the value of '${name}' is not a valid header value`);
    }
  }
  const host = headers.get('host') ?? '127.0.0.1';
  let url: URL;
  try {
    url = new URL(path, `http://${host}`);
  } catch {
    throw new UsageError(`--header host: '${host}' is not a host name`);
  }
  try {
    return new Request(url, { method, headers });
  } catch (error) {
    throw new UsageError(`--method ${method}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Drops what is written to `stream` until `restore()`, which says how many writes were dropped. */
function silence(stream: NodeJS.WriteStream, name: string): { name: string; restore(): number } {
  const own = Object.getOwnPropertyDescriptor(stream, 'write');
  let writes = 0;
  const drop = (...args: unknown[]): boolean => {
    writes++;
    const callback = args.find((arg) => typeof arg === 'function') as (() => void) | undefined;
    if (callback !== undefined) queueMicrotask(callback);
    return true;
  };
  stream.write = drop as NodeJS.WriteStream['write'];
  return {
    name,
    restore() {
      if (own === undefined) Reflect.deleteProperty(stream, 'write');
      else Object.defineProperty(stream, 'write', own);
      return writes;
    },
  };
}
