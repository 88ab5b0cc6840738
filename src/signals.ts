/**
 * The signal bus: Django's request signals on an eventemitter3 emitter, and the one hook through which
 * every error tsgi catches reaches the operator.
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
 * reported (see below); the other receivers still run, the response is unaffected, and no rejection
 * is left unhandled. Receivers run in the order they were connected; async receivers are not awaited
 * by the request.
 *
 * Errors: {@link SignalBus.onError} is the one place errors go — an exception that became a 500, a
 * response that failed after it started, a failing receiver, a request that could not close cleanly.
 * By default each is written to stderr as one line saying what failed and on which request (method
 * and path; never the query, headers or body), followed by the stack. Building that report never
 * throws, whatever was thrown (a string, `null`, a null-prototype object, an Error whose `stack`
 * getter throws).
 *
 * Speed: dispatch reads eventemitter3's listener storage (`_events`) directly, as its own `emit` does,
 * to call each listener without copying the list. That shape is probed once when this module loads;
 * if it is not what is expected, dispatch falls back to the public `listeners()` (slower, same
 * behaviour). test/signals-internals.test.ts holds the probe to the installed eventemitter3.
 */
import { EventEmitter } from 'eventemitter3';
import { type ErrorSource, formatError, formatReport, ReceiverError } from './report.ts';
import type { Receiver, SignalEvents, SignalName } from './types.ts';

/**
 * The hook errors are reported to: the error, what failed, and the request it happened on when that is
 * known. It should not throw; if it does, its failure and the original error go to stderr instead.
 */
export type SignalErrorReporter = (error: unknown, where: ErrorSource, request?: Request) => void;

/**
 * The shape `dispatch()` relies on, or undefined when the probe found another: then dispatch uses the
 * public API. Read by test/signals-internals.test.ts.
 */
export const listenerStore: { readonly prefix: string } | undefined = probeListenerStore();
let store = listenerStore;

/**
 * Testing hook: `true` makes every bus dispatch through eventemitter3's public API, as it would if the
 * probe had failed; `false` goes back to what the probe found.
 */
export function forcePublicDispatch(force: boolean): void {
  store = force ? undefined : listenerStore;
}

/**
 * Writes one report to stderr: a line saying what failed (and on which request), then the stack.
 *
 * @example
 * // tsgi: the application raised an exception on GET /users/7; the client got a 500
 * // Error: no such user
 * //     at showUser (file:///srv/site/views.ts:12:11)
 */
const reportToStderr: SignalErrorReporter = (error, where, request) => {
  console.error(formatReport(error, where, request));
};

/**
 * An isolated signal bus. Most sites use the process-wide {@link signals}; make one of these to keep a
 * site's receivers apart (`createHandler(app, { signals: new SignalBus() })`).
 *
 * @example
 * const bus = new SignalBus({ onError: (error, where) => logger.error({ where, stack: formatError(error) }) });
 * const disconnect = bus.connect('request_finished', ({ status, durationMs }) => {
 *   metrics.observe(status, durationMs);
 * });
 */
export class SignalBus extends EventEmitter<SignalEvents> {
  /**
   * Where every error tsgi catches is reported (see {@link ErrorSource} for what `where` says): by
   * default, one line to stderr saying what failed and on which request, followed by the stack.
   * Replace it to send errors elsewhere — on the process-wide bus for the whole site, or per bus with
   * `new SignalBus({ onError })`. It is called synchronously, where the failure is caught (for
   * `'response'`, when the request is over); it should not throw (if it does, both errors go to
   * stderr).
   *
   * @example
   * // One JSON line per error, for a log shipper:
   * signals.onError = (error, where, request) => {
   *   process.stderr.write(`${JSON.stringify({
   *     level: 'error', where, method: request?.method, path: request && new URL(request.url).pathname,
   *     stack: formatError(error),
   *   })}\n`);
   * };
   */
  onError: SignalErrorReporter;
  /** For the public-API fallback only: the context and once-ness of each receiver, by event. */
  private registered: Map<string, WeakMap<object, Registration>> | undefined;

  constructor(options: { onError?: SignalErrorReporter } = {}) {
    super();
    this.onError = options.onError ?? reportToStderr;
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
   * Passes `error` to {@link onError}, and never throws: the request that hit the error must not be
   * broken by reporting it.
   */
  report(error: unknown, where: ErrorSource, request?: Request): void {
    try {
      this.onError(error, where, request);
    } catch (reporterError) {
      lastResort(error, where, request, reporterError);
    }
  }

  override on<E extends SignalName>(event: E, fn: Listening<E>, context?: unknown): this {
    this.remember(event, fn, context, false);
    return super.on(event, fn, context);
  }

  override addListener<E extends SignalName>(event: E, fn: Listening<E>, context?: unknown): this {
    this.remember(event, fn, context, false);
    return super.addListener(event, fn, context);
  }

  override once<E extends SignalName>(event: E, fn: Listening<E>, context?: unknown): this {
    this.remember(event, fn, context, true);
    return super.once(event, fn, context);
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
    if (store === undefined) return this.dispatchPublicly(event, payload);
    // Mirrors eventemitter3's own emit (one listener is stored bare, several as an array that is
    // replaced, never mutated, on removal: the probe checks both), with each call isolated.
    const key = store.prefix === '' ? event : store.prefix + event;
    const listeners = (this as unknown as { _events: Record<string, Listeners> })._events[key];
    if (listeners === undefined) return false;
    if (!Array.isArray(listeners)) {
      return this.call(event, listeners.fn, listeners.context, listeners.once, payload);
    }
    let pending: Promise<void>[] | undefined;
    for (const listener of listeners) {
      const result = this.call(event, listener.fn, listener.context, listener.once, payload);
      if (result === undefined) continue;
      pending ??= [];
      pending.push(result);
    }
    return pending && Promise.all(pending).then(noop);
  }

  /** Dispatch through eventemitter3's public API, for when its internals are not what the probe expects. */
  private dispatchPublicly(event: SignalName, payload: unknown): Promise<void> | undefined | false {
    const fns = this.listeners(event) as ListenerFn[]; // a copy: removals during dispatch apply next time
    if (fns.length === 0) return false;
    const registered = this.registered?.get(event);
    let pending: Promise<void>[] | undefined;
    for (const fn of fns) {
      const registration = registered?.get(fn);
      // eventemitter3 calls a listener without a context on the emitter itself.
      const result = this.call(
        event,
        fn,
        registration?.context || this,
        registration?.once ?? false,
        payload,
      );
      if (result === undefined) continue;
      pending ??= [];
      pending.push(result);
    }
    return pending && Promise.all(pending).then(noop);
  }

  private remember(event: string, fn: unknown, context: unknown, once: boolean): void {
    if (typeof fn !== 'function') return; // eventemitter3 itself refuses it, with its own TypeError
    this.registered ??= new Map();
    let byFn = this.registered.get(event);
    if (byFn === undefined) {
      byFn = new WeakMap();
      this.registered.set(event, byFn);
    }
    byFn.set(fn, { context, once });
  }

  private call(
    event: SignalName,
    fn: ListenerFn,
    context: unknown,
    once: boolean,
    payload: unknown,
  ): Promise<void> | undefined {
    if (once) this.removeListener(event, fn as Listening<SignalName>, undefined, true);
    try {
      const result = fn.call(context, payload);
      if (isThenable(result)) {
        return Promise.resolve(result).then(noop, (error: unknown) =>
          this.receiverFailed(event, fn, payload, error),
        );
      }
    } catch (error) {
      this.receiverFailed(event, fn, payload, error);
    }
    return undefined;
  }

  private receiverFailed(event: SignalName, fn: ListenerFn, payload: unknown, error: unknown): void {
    this.report(new ReceiverError(event, nameOf(fn), { cause: error }), event, requestOf(payload));
  }
}

/**
 * The process-wide default bus: handlers emit here unless given `{ signals }`, and its `onError` is
 * where their errors go.
 *
 * @example
 * import { signals } from 'tsgi';
 * signals.connect('request_finished', ({ request, status, outcome }) => {
 *   console.log(request.method, request.url, status, outcome);
 * });
 * signals.onError = (error, where, request) => logger.error({ where, url: request?.url, error });
 */
export const signals: SignalBus = new SignalBus();

/** eventemitter3 keeps one listener as an object and several as an array of them. */
interface Listener {
  fn: ListenerFn;
  context: unknown;
  once: boolean;
}
type Listeners = Listener | Listener[] | undefined;
type ListenerFn = (...args: unknown[]) => unknown;
type Listening<E extends SignalName> = EventEmitter.EventListener<SignalEvents, E>;
interface Registration {
  context: unknown;
  once: boolean;
}

/**
 * Checks, on a throwaway emitter, what `dispatch()` reads: `_events[prefix + name]` holds one listener
 * bare (`{ fn, context, once }`) and several as an array, which removal replaces rather than mutates
 * (a dispatch loop walking it must not see it shift).
 */
function probeListenerStore(): { readonly prefix: string } | undefined {
  try {
    const prefix = typeof EventEmitter.prefixed === 'string' ? EventEmitter.prefixed : '';
    const emitter = new EventEmitter<{ probe: [] }>();
    const events = (): Record<string, unknown> | undefined =>
      (emitter as unknown as { _events?: Record<string, unknown> })._events;
    const first = (): void => {};
    const second = (): void => {};
    const context = {};
    emitter.on('probe', first, context);
    const one = events()?.[`${prefix}probe`];
    emitter.once('probe', second);
    const several = events()?.[`${prefix}probe`];
    emitter.off('probe', first);
    const after = events()?.[`${prefix}probe`];
    emitter.off('probe', second);
    const gone = events()?.[`${prefix}probe`];
    const ok =
      isListener(one, first, context, false) &&
      Array.isArray(several) &&
      several.length === 2 &&
      isListener(several[0], first, context, false) &&
      isListener(several[1], second, emitter, true) &&
      after !== several &&
      isListener(after, second, emitter, true) &&
      gone === undefined;
    return ok ? { prefix } : undefined;
  } catch {
    return undefined; // whatever broke, the public API still works
  }
}

function isListener(value: unknown, fn: unknown, context: unknown, once: boolean): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const listener = value as Partial<Listener>;
  return listener.fn === fn && listener.context === context && listener.once === once;
}

/** The reporter failed too: stderr is all that is left, and writing there must not throw either. */
function lastResort(
  error: unknown,
  where: ErrorSource,
  request: Request | undefined,
  reporterError: unknown,
): void {
  try {
    console.error(
      `${formatReport(error, where, request)}\ntsgi: and signals.onError failed while reporting it:\n${formatError(reporterError)}`,
    );
  } catch {
    // Nothing further can carry the error; the request it came from must go on regardless.
  }
}

function requestOf(payload: unknown): Request | undefined {
  if (payload === null || typeof payload !== 'object') return undefined;
  try {
    return (payload as { request?: Request }).request;
  } catch {
    return undefined;
  }
}

function nameOf(fn: ListenerFn): string {
  try {
    return typeof fn.name === 'string' ? fn.name : '';
  } catch {
    return '';
  }
}

function noop(): void {}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
