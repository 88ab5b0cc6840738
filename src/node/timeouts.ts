/**
 * The Node adapter's own timeouts, both kept by one sweep per site instead of a timer per request:
 *
 * - **the request timeout** (`timeout`): how long the application may take to produce its response.
 *   An exchange still waiting for it after that long is timed out: `context.signal` aborts with a
 *   {@link RequestTimeoutError}, `got_request_exception` fires, the error is reported, and the client
 *   gets a 503 (exchange.ts). Whatever the application answers later is discarded, and the request
 *   finishes once the 503 is sent; a layer that is still running then gets the grace period and is
 *   reported by name (scope.ts). A streamed body is not bound by it: its head is the answer.
 * - **the send timeout** (`sendTimeout`): a client that stops reading. A connection whose socket holds
 *   unsent bytes, with no write finishing, for that long is cut; its open exchanges end `errored`
 *   with a {@link SendTimeoutError}. Caveat: a fixed body (a string or bytes) is one write, so for
 *   one larger than the socket's buffers the bound is on its whole transfer: stream large bodies.
 *
 * Headers, whole-request and keep-alive timeouts are Node's own (serve.ts sets them, and how often
 * Node checks them).
 *
 * The sweep runs every quarter of the shortest timeout (at least 10 ms, at most 1 s), so a timeout
 * fires within that much after it is due. Requests cost nothing for it: an exchange notes the sweep
 * count it started at.
 */
import type { Connection, OpenExchange } from './connection.ts';

/**
 * The reason `context.signal` aborts with when the request timeout expires (its `name` is
 * `TimeoutError`, as for `AbortSignal.timeout()`, so `fetch(url, { signal: context.signal })` rejects
 * the same way).
 *
 * @example
 * const app: Application = async (request, context) => {
 *   try {
 *     return Response.json(await slowReport({ signal: context.signal }));
 *   } catch (error) {
 *     if (error instanceof RequestTimeoutError) metrics.timeouts.inc();
 *     throw error;
 *   }
 * };
 */
export class RequestTimeoutError extends DOMException {
  /** The HTTP status the server answers with. */
  readonly status = 503;
  constructor(readonly timeoutMs: number) {
    super(
      `tsgi: the application had no response after ${timeoutMs} ms (the request timeout)`,
      'TimeoutError',
    );
  }
}

/** Why a connection whose client stopped reading was cut (`request_finished`'s `error`). */
export class SendTimeoutError extends Error {
  override name = 'SendTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`tsgi: the client read nothing for ${timeoutMs} ms (the send timeout); the connection was cut`);
  }
}

/** An exchange as the sweep sees it. */
export interface TimedExchange extends OpenExchange {
  /** The sweep count when the application was called. */
  readonly startTick: number;
  /** True once the application was called. */
  readonly started: boolean;
  /** True once the exchange has a response to send (the application's, or an error page). */
  readonly answered: boolean;
  /** The request timeout expired. */
  timedOut(): void;
}

/** The timeouts of one site, in ms (0: off). */
export interface TimeoutSettings {
  readonly timeoutMs: number;
  readonly sendTimeoutMs: number;
}

/** One sweep per site over its open connections. */
export class Watchdog {
  /** How many sweeps have run: the clock exchanges are timed by. */
  tick = 0;
  readonly periodMs: number;
  private readonly connections = new Set<Connection>();
  private timer: NodeJS.Timeout | undefined = undefined;
  private readonly requestTicks: number;
  private readonly sendTicks: number;

  constructor(private readonly settings: TimeoutSettings) {
    const shortest = Math.min(...[settings.timeoutMs, settings.sendTimeoutMs].filter((ms) => ms > 0));
    this.periodMs = Math.max(10, Math.min(1000, Math.floor(shortest / 4)));
    this.requestTicks = Math.ceil(settings.timeoutMs / this.periodMs);
    this.sendTicks = Math.ceil(settings.sendTimeoutMs / this.periodMs);
  }

  /** A watchdog for `settings`, or undefined when every timeout is off. */
  static for(settings: TimeoutSettings): Watchdog | undefined {
    return settings.timeoutMs > 0 || settings.sendTimeoutMs > 0 ? new Watchdog(settings) : undefined;
  }

  watch(connection: Connection): void {
    this.connections.add(connection);
    if (this.timer === undefined) {
      this.timer = setInterval(sweep, this.periodMs, this);
      this.timer.unref();
    }
  }

  forget(connection: Connection): void {
    this.connections.delete(connection);
  }

  /** Stops sweeping (the server closed). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  sweep(): void {
    const tick = ++this.tick;
    for (const connection of this.connections) {
      if (this.sendTicks > 0 && this.stalled(connection, tick)) {
        connection.cut(new SendTimeoutError(this.settings.sendTimeoutMs));
        continue;
      }
      if (this.requestTicks === 0) continue;
      for (let exchange = connection.first; exchange !== undefined; ) {
        const next = exchange.next;
        const timed = exchange as TimedExchange;
        // `>`: the exchange started up to one sweep after startTick's, so never before it is due.
        if (timed.started && !timed.answered && tick - timed.startTick > this.requestTicks) timed.timedOut();
        exchange = next;
      }
    }
  }

  /** True when the connection's socket has held the same unsent bytes for the send timeout. */
  private stalled(connection: Connection, tick: number): boolean {
    const pending = connection.socket.writableLength;
    if (pending === 0) {
      connection.pendingSince = -1;
      return false;
    }
    if (pending !== connection.pendingBytes || connection.pendingSince < 0) {
      connection.pendingBytes = pending;
      connection.pendingSince = tick;
      return false;
    }
    return tick - connection.pendingSince >= this.sendTicks;
  }
}

function sweep(watchdog: Watchdog): void {
  watchdog.sweep();
}
