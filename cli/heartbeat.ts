/**
 * The workers' heartbeat, gunicorn's `--timeout`: a worker whose event loop is blocked for longer than
 * the timeout is killed and replaced, and the master says which requests it held.
 *
 * Each worker sends its master a beat over the IPC channel every min(1 s, timeout / 4), from a timer
 * in its own event loop ({@link startHeartbeat}). A loop stuck in synchronous code (a loop that never
 * yields, a catastrophic regular expression, a huge `JSON.parse`) cannot run that timer, so the beats
 * stop. Each beat lists the requests the worker holds: method, path (without the query, which may
 * carry secrets), id, age. The master checks as often ({@link HeartbeatMonitor}); a worker whose last
 * beat is older than the timeout gets SIGKILL (a blocked loop cannot run a SIGTERM handler) and a
 * replacement, and one line on stderr names its pid, how long it was silent, and the requests of its
 * last beat.
 *
 * Caveats:
 * - A request that started less than one beat before the loop blocked is not in the last beat: a
 *   beat per request would cost every request an IPC write. The line says "at its last beat".
 * - A worker is judged from the moment it listens: a site that blocks while loading is not caught.
 * - Waiting is not blocking: a worker busy with slow queries or long streams keeps beating. Holding a
 *   request too long is the request timeout's business (serve()'s `timeout`), not the heartbeat's.
 */
import type { Worker } from 'node:cluster';
import type { Handler, RequestContext } from '../src/types.ts';

/** A request a worker holds, as its beat reports it. */
export interface HeldRequest {
  method: string;
  /** The path, without the query string. */
  path: string;
  id: string;
  /** How long it has been running (ms), when the beat was sent. */
  ageMs: number;
}

/** What a worker sends with every beat. */
interface HeartbeatMessage {
  tsgi: 'heartbeat';
  /** The oldest held requests, at most {@link LISTED}. */
  requests: HeldRequest[];
  /** How many requests the worker holds in all. */
  held: number;
}

/** Requests listed per beat: enough to see what blocked, bounded so a beat stays a small message. */
const LISTED = 20;

/** How often a worker beats, and the master checks: min(1 s, timeout / 4). */
export function beatInterval(timeoutMs: number): number {
  return Math.max(1, Math.min(1000, Math.floor(timeoutMs / 4)));
}

/**
 * Starts sending beats to the master (this process's IPC parent), each with the requests `handler`
 * holds. Does nothing when `timeoutMs` is 0 or there is no parent. Returns the function that stops it.
 *
 * @example
 * const stopBeating = startHeartbeat(handler, 30_000);
 * await server.close();
 * stopBeating();
 */
export function startHeartbeat(handler: Handler, timeoutMs: number): () => void {
  if (timeoutMs <= 0 || process.send === undefined) return () => undefined;
  // The handler's own lifecycle signals say what it holds; `sender` tells its requests from those of
  // another handler on the same bus.
  const held = new Map<RequestContext, { request: Request; since: number }>();
  const disconnects = [
    handler.signals.connect('request_started', ({ sender, request, context }) => {
      if (sender === handler) held.set(context, { request, since: performance.now() });
    }),
    handler.signals.connect('request_finished', ({ sender, context }) => {
      if (sender === handler) held.delete(context);
    }),
  ];
  const beat = (): void => {
    if (process.connected) process.send!(heartbeat(held), undefined, undefined, masterGone);
  };
  beat();
  const timer = setInterval(beat, beatInterval(timeoutMs));
  timer.unref();
  return () => {
    clearInterval(timer);
    for (const disconnect of disconnects) disconnect();
  };
}

/** A beat that could not be sent: the master is gone, and cluster stops this worker on the disconnect. */
function masterGone(_error: Error | null): void {}

function heartbeat(held: Map<RequestContext, { request: Request; since: number }>): HeartbeatMessage {
  const now = performance.now();
  const requests: HeldRequest[] = [];
  // A Map keeps insertion order: the first entries are the oldest requests.
  for (const [context, { request, since }] of held) {
    if (requests.length === LISTED) break;
    requests.push({
      method: request.method,
      path: new URL(request.url).pathname,
      id: context.id,
      ageMs: Math.round(now - since),
    });
  }
  return { tsgi: 'heartbeat', requests, held: held.size };
}

function isHeartbeat(message: unknown): message is HeartbeatMessage {
  return (message as HeartbeatMessage | null)?.tsgi === 'heartbeat';
}

/** A worker that went silent, as {@link HeartbeatMonitor} reports it. */
export interface Silence {
  /** Time since its last beat (ms). */
  silentMs: number;
  /** The requests of its last beat, each aged to now. */
  requests: HeldRequest[];
  held: number;
}

/**
 * The master's side: remembers each worker's last beat and calls `onSilent` once for a worker whose
 * last beat is older than `timeoutMs` (then forgets it). With `timeoutMs` 0 it never calls it.
 *
 * @example
 * const monitor = new HeartbeatMonitor(30_000, (worker, silence) => worker.process.kill('SIGKILL'));
 * cluster.on('message', (worker, message) => monitor.receive(worker, message));
 */
export class HeartbeatMonitor {
  private readonly last = new Map<Worker, { at: number; requests: HeldRequest[]; held: number }>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeoutMs: number,
    private readonly onSilent: (worker: Worker, silence: Silence) => void,
  ) {
    if (timeoutMs > 0) {
      this.timer = setInterval(() => this.check(), beatInterval(timeoutMs));
    }
  }

  /** Starts judging `worker`: call it once the worker listens. */
  watch(worker: Worker): void {
    if (this.timer !== undefined) this.last.set(worker, { at: performance.now(), requests: [], held: 0 });
  }

  /** Takes in a message from `worker`; true if it was a beat. */
  receive(worker: Worker, message: unknown): boolean {
    if (!isHeartbeat(message)) return false;
    if (this.last.has(worker)) {
      this.last.set(worker, { at: performance.now(), requests: message.requests, held: message.held });
    }
    return true;
  }

  /** Stops judging `worker` (it exited). */
  forget(worker: Worker): void {
    this.last.delete(worker);
  }

  stop(): void {
    clearInterval(this.timer);
    this.last.clear();
  }

  private check(): void {
    const now = performance.now();
    for (const [worker, last] of this.last) {
      const silentMs = now - last.at;
      if (silentMs <= this.timeoutMs) continue;
      this.last.delete(worker);
      const requests = last.requests.map((request) => ({
        ...request,
        ageMs: request.ageMs + Math.round(silentMs),
      }));
      this.onSilent(worker, { silentMs, requests, held: last.held });
    }
  }
}

/**
 * The line the master logs for a silent worker.
 *
 * @example
 * silenceLine(4242, { silentMs: 1260, requests: [{ method: 'GET', path: '/report', id: 'b7…', ageMs: 1700 }], held: 1 }, 1000, true);
 * // tsgi: worker 4242 sent no heartbeat for 1.3s (--timeout 1s: its event loop is blocked); killed it, starting another; at its last beat it held 1 request(s): GET /report (id b7…, running 1.7s)
 */
export function silenceLine(
  pid: number | undefined,
  silence: Silence,
  timeoutMs: number,
  replacing: boolean,
): string {
  const { requests, held } = silence;
  const listed = requests.map(
    ({ method, path, id, ageMs }) => `${method} ${path} (id ${id}, running ${inSeconds(ageMs)})`,
  );
  if (held > requests.length) listed.push(`and ${held - requests.length} more`);
  const what =
    held === 0
      ? 'at its last beat it held no request'
      : `at its last beat it held ${held} request(s): ${listed.join(', ')}`;
  return (
    `tsgi: worker ${pid} sent no heartbeat for ${inSeconds(silence.silentMs)} ` +
    `(--timeout ${timeoutMs / 1000}s: its event loop is blocked); ` +
    `killed it${replacing ? ', starting another' : ''}; ${what}\n`
  );
}

function inSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
