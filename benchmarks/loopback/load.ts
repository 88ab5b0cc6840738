/**
 * One measured window: autocannon loads one path of one target's server, and the server reports the
 * CPU it spent.
 *
 * A window is a warm-up run of `warmup` seconds (which also estimates the request rate), then a run of
 * a fixed number of requests (autocannon's `amount`), about `duration` seconds' worth at that rate, so
 * every window takes about the same time whatever the target's speed. The server's CPU is read just
 * before the first request and just after the last response, and divided by the requests the *server*
 * counted: a pipelined autocannon connection hangs up as soon as it has sent its share, with up to
 * `pipelining - 1` requests still unanswered (450 at 50 connections and `-p 10`), which the server
 * may or may not have served, so autocannon's count would bias slower targets. The rate is the
 * responses autocannon received over the time from the start to the last of them.
 *
 * Every response must have the shape's status and no request may fail, or the window throws
 * {@link LoadError}: a figure for a server that answered errors would be a figure for something else.
 */
import { createRequire } from 'node:module';
import type { ServerProcess } from './launch.ts';

interface AutocannonResult {
  requests: { total: number };
  duration: number;
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonRun extends PromiseLike<AutocannonResult> {
  on(event: 'response', listener: () => void): void;
}
type Autocannon = (options: Record<string, unknown>) => AutocannonRun;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** Thrown when a window saw errors, timeouts or an unexpected status. */
export class LoadError extends Error {
  override name = 'LoadError';
}

export interface WindowOptions {
  path: string;
  /** The status every response must have. */
  status: number;
  connections: number;
  pipelining: number;
  /** Seconds of warm-up before the measured run. */
  warmup: number;
  /** About how many seconds the measured run lasts. */
  duration: number;
  /** The rate this target reached on this path before (req/s), a better guess than a short warm-up's. */
  rate?: number | undefined;
}

export interface Window {
  /** Requests the server received in the window. */
  requests: number;
  /** Responses autocannon received. */
  responses: number;
  seconds: number;
  cpuMicros: number;
}

/** autocannon checks whether to stop every `sampleInt` ms: short, so a run ends when its work does. */
const SAMPLE_INTERVAL = 25;

/**
 * Warms `server` up on `options.path`, then measures a run of about `options.duration` seconds.
 *
 * @example
 * const window = await measureWindow(server, { path: '/json', status: 200, connections: 50, pipelining: 1, warmup: 0.25, duration: 0.6 });
 * window.cpuMicros / window.requests; // µs of server CPU per request
 */
export async function measureWindow(server: ServerProcess, options: WindowOptions): Promise<Window> {
  const url = `http://127.0.0.1:${server.port}${options.path}`;
  const common = {
    url,
    connections: options.connections,
    pipelining: options.pipelining,
    sampleInt: SAMPLE_INTERVAL,
  };
  const warm = await autocannon({ ...common, duration: options.warmup });
  check(server.target, options, warm);
  const rate = options.rate ?? warm.requests.total / Math.max(warm.duration, options.warmup);
  const floor = options.connections * options.pipelining * 4;
  const amount = Math.max(floor, Math.round(rate * options.duration));

  await server.begin();
  const started = performance.now();
  let last = started;
  const run = autocannon({ ...common, amount });
  run.on('response', () => {
    last = performance.now();
  });
  const result = await run;
  const { micros, requests } = await server.end();
  check(server.target, options, result);
  const responses = result.requests.total;
  // A run that came before (a warm-up) may leave up to connections × pipelining requests in flight,
  // which the server serves inside this window: they are in its CPU time and in its count alike.
  if (requests < responses || requests > amount + options.connections * options.pipelining) {
    throw new LoadError(
      `${server.target} ${options.path}: the server counted ${requests} requests, autocannon sent ${amount} and got ${responses} answers — is something else sending it requests?`,
    );
  }
  return { requests, responses, seconds: Math.round((last - started) * 1000) / 1e6, cpuMicros: micros };
}

/**
 * Loads `server` on `path` for `seconds` without measuring: a new server's JIT warm-up.
 *
 * @example
 * await warmUp(server, { path: '/text', status: 200, connections: 50, pipelining: 1 }, 0.2);
 */
export async function warmUp(
  server: ServerProcess,
  options: Omit<WindowOptions, 'warmup' | 'duration'>,
  seconds: number,
): Promise<void> {
  const url = `http://127.0.0.1:${server.port}${options.path}`;
  const result = await autocannon({
    url,
    connections: options.connections,
    pipelining: options.pipelining,
    sampleInt: SAMPLE_INTERVAL,
    duration: seconds,
  });
  check(server.target, { ...options, warmup: seconds, duration: 0 }, result);
}

function check(target: string, options: WindowOptions, result: AutocannonResult): void {
  const statuses = Object.keys(result.statusCodeStats);
  if (
    result.errors > 0 ||
    result.timeouts > 0 ||
    statuses.some((status) => Number(status) !== options.status)
  ) {
    throw new LoadError(
      `${target} ${options.path} -p ${options.pipelining}: ${result.errors} errors, ${result.timeouts} timeouts, statuses ${statuses.join(', ') || 'none'} (expected only ${options.status})`,
    );
  }
}
