/**
 * The signal bus: Django's request signals on an eventemitter3 emitter.
 *
 * Events, in the order a request sees them:
 * - `request_started` `{ sender, request, context }` — once per request, before any middleware or
 *   application code runs.
 * - `got_request_exception` `{ sender, request, context, error }` — when the application or a
 *   middleware throws (sync or async) before a response was returned; the handler then answers 500.
 * - `request_finished` `{ sender, request, context, status, bytesSent, durationMs, outcome, error? }`
 *   — exactly once per request, after the response is over (completed, aborted or errored), after the
 *   application and every middleware have returned or thrown, after every tracked body was closed and
 *   every `context.onClose` callback ran.
 *
 * `sender` is the {@link Handler} that emitted the event, so one bus can serve several sites.
 *
 * Dispatch is isolated: eventemitter3's own `emit` is synchronous and stops at the first listener
 * that throws, so this bus overrides it. A receiver that throws, or an async receiver that rejects, is
 * passed to {@link SignalBus.onError} (default: `console.error`); the other receivers still run, the
 * response is unaffected, and no rejection is left unhandled. Receivers run in the order they were
 * connected; async receivers are not awaited by the request.
 */
import { EventEmitter } from 'eventemitter3';
import type { Receiver, SignalEvents, SignalName } from './types.ts';

/** Where a receiver's failure is reported: the error, and the event it was receiving. */
export type SignalErrorReporter = (error: unknown, event: SignalName | 'request_scope') => void;

/** Raised (and reported, never thrown at the request) when a receiver fails. */
export class ReceiverError extends Error {
  override name = 'ReceiverError';
  constructor(
    readonly event: string,
    readonly receiver: string,
    options: { cause: unknown },
  ) {
    super(
      `tsgi: receiver ${receiver || '(anonymous)'} of '${event}' failed: ${describe(options.cause)}`,
      options,
    );
  }
}

/** eventemitter3 keeps one listener as an object and several as an array of them. */
interface Listener {
  fn: (...args: unknown[]) => unknown;
  context: unknown;
  once: boolean;
}
type Listeners = Listener | Listener[] | undefined;

/** eventemitter3's key prefix ('~' where `Object.create(null)` is missing, else none), read once. */
const PREFIX: string = typeof EventEmitter.prefixed === 'string' ? EventEmitter.prefixed : '';

const defaultReporter: SignalErrorReporter = (error) => console.error(error);

/**
 * An isolated signal bus. Most sites use the process-wide {@link signals}; make one of these to keep a
 * site's receivers apart (`createHandler(app, { signals: new SignalBus() })`).
 *
 * @example
 * const bus = new SignalBus({ onError: (error) => logger.warn(error) });
 * const disconnect = bus.connect('request_finished', ({ status, durationMs }) => {
 *   metrics.observe(status, durationMs);
 * });
 */
export class SignalBus extends EventEmitter<SignalEvents> {
  /** Reports receivers that throw or reject, and request-scope problems. Replace it freely. */
  onError: SignalErrorReporter;

  constructor(options: { onError?: SignalErrorReporter } = {}) {
    super();
    this.onError = options.onError ?? defaultReporter;
  }

  /**
   * Connects `receiver` to `event` and returns a function that disconnects it (Django's
   * `Signal.connect`).
   *
   * @example
   * const disconnect = signals.connect('request_started', ({ request }) => console.log(request.url));
   * disconnect();
   */
  connect<E extends SignalName>(event: E, receiver: Receiver<E>): () => void {
    if (typeof receiver !== 'function') {
      throw new TypeError(
        `signals.connect('${event}', receiver): receiver must be a function, got ${typeof receiver}`,
      );
    }
    this.on(event, receiver);
    return () => {
      this.off(event, receiver);
    };
  }

  /**
   * Calls every receiver of `event` with `payload`, each isolated (see the module notes). Returns
   * whether there were receivers, as eventemitter3 does.
   */
  override emit<E extends SignalName>(event: E, ...args: SignalEvents[E]): boolean {
    return this.dispatch(event, args[0]) !== false;
  }

  /**
   * Like {@link emit}, and returns a promise for the async receivers (which never rejects), `undefined`
   * when every receiver was synchronous, or `false` when there was none.
   */
  dispatch<E extends SignalName>(event: E, payload: SignalEvents[E][0]): Promise<void> | undefined | false {
    // Mirrors eventemitter3's own emit (one listener is stored bare, several as an array that is
    // replaced, never mutated, on removal), with each call isolated.
    const key = PREFIX === '' ? event : PREFIX + event;
    const listeners = (this as unknown as { _events: Record<string, Listeners> })._events[key];
    if (listeners === undefined) return false;
    if (!Array.isArray(listeners)) return this.call(event, listeners, payload);
    let pending: Promise<void>[] | undefined;
    for (const listener of listeners) {
      const result = this.call(event, listener, payload);
      if (result === undefined) continue;
      pending ??= [];
      pending.push(result);
    }
    return pending && Promise.all(pending).then(noop);
  }

  private call(event: SignalName, listener: Listener, payload: unknown): Promise<void> | undefined {
    if (listener.once) this.removeListener(event, listener.fn as Receiver<SignalName>, undefined, true);
    try {
      const result = listener.fn.call(listener.context, payload);
      if (isThenable(result)) {
        return Promise.resolve(result).then(noop, (error: unknown) => this.report(event, listener.fn, error));
      }
    } catch (error) {
      this.report(event, listener.fn, error);
    }
    return undefined;
  }

  private report(event: SignalName, receiver: { name: string }, error: unknown): void {
    try {
      this.onError(new ReceiverError(event, receiver.name, { cause: error }), event);
    } catch (reporterError) {
      // The reporter itself failed: the last resort must not throw into a request either.
      console.error(reporterError);
    }
  }
}

/**
 * The process-wide default bus: handlers emit here unless given `{ signals }`.
 *
 * @example
 * import { signals } from 'tsgi';
 * signals.connect('request_finished', ({ request, status, outcome }) => {
 *   console.log(request.method, request.url, status, outcome);
 * });
 */
export const signals: SignalBus = new SignalBus();

function noop(): void {}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** One line for an error of any kind, for messages. */
export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
