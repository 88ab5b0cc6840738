/**
 * `tsgi serve MODULE[:ATTR]`: serves an application in production, gunicorn style. One process by
 * default; `--workers N` (or `$WEB_CONCURRENCY`) runs a master that forks N workers and replaces one
 * that dies or whose event loop stays blocked past `--timeout` (heartbeat.ts); `--reload` restarts on
 * file changes. Timeouts and limits are flags too (limits.ts).
 *
 * Where it listens: `--bind HOST:PORT`, or `--host`/`--port`; without a port, `$PORT` (the variable
 * that Heroku, Cloud Run, Render and Fly set), else 8000. With the port from `$PORT` and no host
 * given, it listens on every IPv4 interface (0.0.0.0), as gunicorn does, because a platform's router
 * reaches the process from outside; otherwise on 127.0.0.1.
 */
import cluster from 'node:cluster';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { loadApplication, locateModule, parseApplicationSpec } from '../src/loader.ts';
import { SETTINGS_ENV } from '../src/settings.ts';
import type { Application } from '../src/types.ts';
import {
  count,
  envPort,
  HELP_OPTION,
  parseAddress,
  parsePort,
  parsing,
  UsageError,
  VERBOSE_OPTION,
} from './args.ts';
import { relaunch, supervised } from './launcher.ts';
import { LIMIT_OPTIONS, readLimits } from './limits.ts';
import type { CliIO } from './main.ts';
import { isReloadChild, runServer, type ServerPlan } from './runner.ts';
import { runReloader, runWorkers } from './supervisor.ts';
import { supportTypeScript } from './typescript.ts';
import { HELP } from './usage.ts';

/** What a `tsgi serve` command line asks for. */
export interface ServeRequest {
  /** The application to serve, `MODULE[:ATTR]`. */
  spec: string;
  plan: ServerPlan;
  /** Worker processes under a master; undefined: one process, no master. */
  workers: number | undefined;
  reload: boolean;
}

/**
 * Reads a `tsgi serve` command line (without `serve`), each value checked with a one-line
 * {@link UsageError} that names it; `'help'` when it asks for the usage.
 *
 * @example
 * parseServe(['mysite/wsgi.ts', '--timeout', '10'], {}).plan.limits.timeoutMs; // 10000
 */
export function parseServe(args: string[], env: Record<string, string | undefined>): ServeRequest | 'help' {
  const { values, positionals } = parsing(() =>
    parseArgs({
      args,
      allowPositionals: true,
      options: {
        bind: { type: 'string', short: 'b' },
        host: { type: 'string' },
        port: { type: 'string', short: 'p' },
        workers: { type: 'string', short: 'w' },
        ...LIMIT_OPTIONS,
        'access-log': { type: 'boolean' },
        'no-fast-response': { type: 'boolean' },
        reload: { type: 'boolean' },
        verbose: VERBOSE_OPTION,
        help: HELP_OPTION,
      },
    }),
  );
  if (values.help) return 'help';
  const [spec, extra] = positionals;
  if (spec === undefined)
    throw new UsageError('serve needs the application to serve: tsgi serve path/to/wsgi.ts[:attr]');
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
  if (values.bind !== undefined && (values.host !== undefined || values.port !== undefined)) {
    throw new UsageError('use either --bind or --host/--port, not both');
  }
  const bind = values.bind === undefined ? {} : parseAddress(values.bind, '--bind');
  const given = bind.port ?? (values.port === undefined ? undefined : parsePort(values.port, '--port'));
  const fromEnv = given === undefined ? envPort(env) : undefined;
  const plan: ServerPlan = {
    host: bind.host ?? values.host ?? (fromEnv === undefined ? '127.0.0.1' : '0.0.0.0'),
    port: given ?? fromEnv ?? 8000,
    limits: readLimits(values),
    accessLog: values['access-log'] === true,
    fastResponse: values['no-fast-response'] !== true,
  };
  const reload = values.reload === true;
  const workers = values.workers === undefined ? undefined : count(values.workers, '--workers');
  if (reload && workers !== undefined && workers > 1) {
    throw new UsageError('--reload runs a single process: it cannot be used with --workers');
  }
  // Asking for workers, even one, asks for a master: it replaces a dead or blocked worker.
  const fromConcurrency = env.WEB_CONCURRENCY ? count(env.WEB_CONCURRENCY, 'WEB_CONCURRENCY') : undefined;
  return { spec, plan, workers: reload ? undefined : (workers ?? fromConcurrency), reload };
}

export async function serveCommand(args: string[], io: CliIO): Promise<number> {
  const env = io.env ?? process.env;
  const request = parseServe(args, env);
  if (request === 'help') {
    (io.stdout ?? process.stdout).write(HELP);
    return 0;
  }
  const { spec, plan, workers, reload } = request;
  const cwd = io.cwd ?? process.cwd();
  // Fail on a missing module here, once, rather than in every child.
  const file = locateModule(parseApplicationSpec(spec).module, { cwd });
  const load = async (): Promise<Application> => {
    await supportTypeScript(file, env[SETTINGS_ENV]);
    return loadApplication(spec, { cwd });
  };

  if (isReloadChild() || cluster.isWorker) return runServer(load, plan, io);
  if (reload) {
    const dir = file === undefined ? cwd : dirname(file);
    return supervised(io, (common) => runReloader({ ...relaunch('serve', args), ...common, dir, env }));
  }
  if (workers !== undefined) {
    const { gracefulTimeoutMs, timeoutMs } = plan.limits;
    return supervised(io, (common) =>
      runWorkers({
        ...relaunch('serve', args),
        ...common,
        count: workers,
        gracefulTimeoutMs,
        timeoutMs,
        env,
      }),
    );
  }
  return runServer(load, plan, io);
}
