/**
 * One server process, as `tsgi serve` and `tsgi runserver` run it (and each worker or reload child):
 * load the application, listen, print `tsgi: serving <url>` (a cluster worker tells its primary
 * instead), and on SIGTERM or SIGINT stop accepting, let in-flight requests finish (serve()'s
 * `close()`, bounded by the graceful timeout) and resolve with the exit code.
 *
 * A second signal exits at once, except in a worker or reload child: the terminal's Ctrl-C reaches
 * them as well as their parent's SIGTERM, and only the parent may decide to stop waiting.
 *
 * A stop whose graceful timeout cut requests says how many and resolves 1 (graceful.ts). In a cluster
 * worker the server also sends its master a heartbeat, so that a blocked event loop is noticed
 * (heartbeat.ts).
 *
 * `--access-log` puts the logging middleware (Common Log Format, stdout) around the application: the
 * CLI assembles a whole server, as a site's settings do, so it imports from middleware/ (the library
 * in src/ never does).
 */
import cluster from 'node:cluster';
import { logging } from '../middleware/logging.ts';
import { compose } from '../src/compose.ts';
import { createHandler, isHandler } from '../src/handler.ts';
import { oneLine } from '../src/loader.ts';
import { type RunningServer, serve } from '../src/node/serve.ts';
import { SignalBus } from '../src/signals.ts';
import type { Application, Handler } from '../src/types.ts';
import { reportCut } from './graceful.ts';
import { startHeartbeat } from './heartbeat.ts';
import { type Limits, serveLimits } from './limits.ts';
import { notifyParent, type Output } from './supervisor.ts';

/** Where a server process writes, and what else may stop it; every field defaults to the process's own. */
export interface ServerIO {
  stdout?: Output;
  stderr?: Output;
  /** Aborting it stops the server as SIGTERM does (for tests and embedding). */
  signal?: AbortSignal;
}

/** How to run one server, however the command line asked for it. */
export interface ServerPlan {
  host: string;
  port: number;
  /** Timeouts and limits (limits.ts); `timeoutMs` is also the heartbeat limit in a worker. */
  limits: Limits;
  accessLog: boolean;
  /** False: leave the global `Response` alone (serve()'s `fastResponse` option). Default: true. */
  fastResponse?: boolean;
}

/**
 * Loads the application, serves it until told to stop, drains, and resolves with the exit code: 0
 * once every request has finished, 1 if the address cannot be listened on (said in one line on
 * stderr), if the graceful timeout cut requests (`tsgi: graceful timeout (30s) cut 3 request(s)`), or
 * if requests still run well past it. A load error is thrown as it is.
 *
 * @example
 * const code = await runServer(() => loadApplication('mysite/wsgi.ts'), {
 *   host: '127.0.0.1', port: 8000, limits: DEFAULT_LIMITS, accessLog: true,
 * });
 */
export async function runServer(
  load: () => Promise<Application>,
  plan: ServerPlan,
  io: ServerIO = {},
): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  const stop = stopSignal(io);
  try {
    const loaded = await load();
    const app = plan.accessLog ? withAccessLog(loaded, io.stdout ?? process.stdout) : loaded;
    // The handler serve() would make anyway, made here so that its `inFlight` and signals can be read.
    const handler = isHandler(app) ? app : createHandler(app);
    const { gracefulTimeoutMs } = plan.limits;
    let server: RunningServer;
    try {
      server = await serve(handler, {
        host: plan.host,
        port: plan.port,
        ...serveLimits(plan.limits),
        ...(plan.fastResponse === false ? { fastResponse: false } : {}),
      });
    } catch (error) {
      stderr.write(`${listenError(error, plan)}\n`);
      return 1;
    }
    if (!cluster.isWorker) (io.stdout ?? process.stdout).write(`tsgi: serving ${server.url}\n`);
    // Beating through the drain too: a worker that blocks while it drains is replaced as well.
    const stopBeating = cluster.isWorker ? startHeartbeat(handler, plan.limits.timeoutMs) : undefined;
    notifyParent(server.url);
    await stop.stopped;
    // close() cuts what is still running after the graceful timeout; this is only a backstop.
    let backstop: NodeJS.Timeout | undefined;
    const expired = new Promise<undefined>((resolve) => {
      backstop = setTimeout(() => resolve(undefined), gracefulTimeoutMs + 5000);
    });
    const closed = await Promise.race([server.close(), expired]);
    const cut = closed?.cut;
    clearTimeout(backstop);
    stopBeating?.();
    if (cut === undefined) {
      stderr.write('tsgi: requests were still running after the graceful timeout; exiting anyway\n');
      return 1;
    }
    if (cut > 0) {
      await reportCut(cut, gracefulTimeoutMs, stderr);
      return 1;
    }
    return 0;
  } finally {
    stop.dispose();
  }
}

/**
 * The application with an access log (the logging middleware, Common Log Format, on stdout). A plain
 * application gets the handler serve() would have made anyway, with logging() as its outermost
 * middleware. A handler (what wsgi.ts usually exports) is wrapped in an outer handler of its own on a
 * private bus, so the site's receivers still see one request_started and one request_finished per
 * request.
 */
function withAccessLog(app: Application, stream: Output): Handler {
  const middleware = [logging({ stream })];
  return isHandler(app)
    ? createHandler(compose(...middleware)(app), { signals: new SignalBus() })
    : createHandler(app, { middleware });
}

/** Resolves on the first SIGTERM, SIGINT, `io.signal` abort or (for a reload child) loss of the parent. */
export function stopSignal(io: ServerIO): { stopped: Promise<string>; dispose(): void } {
  const stderr = io.stderr ?? process.stderr;
  const supervisedChild = isReloadChild() || cluster.isWorker;
  let stop!: (reason: string) => void;
  let signalled = false;
  const stopped = new Promise<string>((resolve) => {
    stop = resolve;
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!signalled) {
      signalled = true;
      stop(signal);
      return;
    }
    // A child hears Ctrl-C from the terminal and SIGTERM from its parent: only the parent may force.
    if (supervisedChild) return;
    stderr.write(`tsgi: ${signal} again; exiting without waiting for in-flight requests\n`);
    process.exit(1);
  };
  const onAbort = (): void => stop('abort');
  const onDisconnect = (): void => stop('disconnect');
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  io.signal?.addEventListener('abort', onAbort, { once: true });
  if (io.signal?.aborted) stop('abort');
  if (isReloadChild()) process.once('disconnect', onDisconnect);
  return {
    stopped,
    dispose: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      io.signal?.removeEventListener('abort', onAbort);
      process.off('disconnect', onDisconnect);
    },
  };
}

/** True in a child the reloader started (Django's RUN_MAIN). */
export function isReloadChild(): boolean {
  return process.env.TSGI_RUN_MAIN === 'true' && process.send !== undefined;
}

function listenError(error: unknown, plan: ServerPlan): string {
  const where = `${plan.host}:${plan.port}`;
  switch ((error as { code?: string } | null)?.code) {
    case 'EADDRINUSE':
      return `tsgi: cannot listen on ${where}: the address is already in use (another server? choose another --port)`;
    case 'EACCES':
      return `tsgi: cannot listen on ${where}: permission denied (ports below 1024 need privileges)`;
    case 'EADDRNOTAVAIL':
      return `tsgi: cannot listen on ${where}: ${plan.host} is not an address of this machine`;
    case 'ENOTFOUND':
      return `tsgi: cannot listen on ${where}: unknown host ${plan.host}`;
    default:
      return `tsgi: cannot listen on ${where}: ${oneLine(error)}`;
  }
}
