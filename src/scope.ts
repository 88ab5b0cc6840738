/**
 * The request scope: who owns a request's lifecycle, and the {@link RequestContext} it hands out.
 *
 * The outermost tsgi-aware component creates the scope (the Node adapter, or `handler.fetch` when a
 * foreign host calls us) and closes it when the exchange with the client is over. Closing is
 * idempotent and always does the same things, in this order:
 *
 * 1. records the outcome and duration, aborts `context.signal` unless the response completed, and
 *    stops following the host's signal (see `follow()`);
 * 2. waits until the application and every middleware have returned or thrown (code still running
 *    must not lose its database connection under it), for at most `gracePeriodMs`: a layer that
 *    never settles (a hung handler) is then reported by name, and closing goes on;
 * 3. cancels every tracked body still open through the scope's own handle on its source, and waits for
 *    those cancellations to settle for at most `gracePeriodMs` (default 1 s), reporting what did not;
 * 4. runs the `context.onClose` callbacks, last registered first, each isolated;
 * 5. runs the finishers (the handlers' `request_finished`), innermost handler first, then the owner's
 *    `onFinished`.
 *
 * A body tracked once closing has begun (an application that answers after the client left) is
 * cancelled at once.
 */
import { type BodyCloseReason, type BodyHandle, proxyBody, STATIC_BODY, withBody } from './body.ts';
import type { CloseCallback, FinishInfo, Outcome, RequestContext } from './types.ts';

/** Matches no value a layer can return (the fast-path fields start out holding it). */
const NOTHING = Symbol('nothing');

/**
 * What the lists below start out as: most requests track no body and register no callback, and an
 * array made for nothing costs an allocation on each of them. Replaced by a real array on first push.
 */
const NONE: readonly never[] = Object.freeze([]);

/**
 * The clock behind `durationMs`, taken once: on Node, `globalThis.performance` is a lazy getter that
 * checks its receiver on every read, a cost each request would otherwise pay twice.
 */
const clock: Performance = performance;

/** The context property that leads from a {@link RequestContext} to its scope. */
export const SCOPE: unique symbol = Symbol.for('tsgi.scope');

export interface ScopeOptions {
  /** The client's address, if the host knows it. */
  remoteAddress?: string;
  /** How long cancellations and close callbacks may take before the scope gives up on them (ms). */
  gracePeriodMs?: number;
  /** Where problems found while closing are reported. Default: `console.error`. */
  onError?: (error: unknown) => void;
  /** Runs last, after every finisher: the owner's own bookkeeping (the Node adapter counts open scopes). */
  onFinished?: () => void;
  /**
   * The host's answer to "is this body fixed data?" for a response without tsgi's `STATIC_BODY` mark
   * (a runtime's own Response): true when its body is absent or made from fixed data, which holds
   * nothing to release, so the scope need not proxy it. Without one, every such response with a body
   * is treated as a stream: correct, only slower. The Node adapter passes one that knows undici.
   */
  fixedBody?: (response: Response) => boolean;
}

/**
 * Reported when layers, cancellations or close callbacks did not settle within the grace period.
 * `running` names the layers still running (innermost first), when that is what was waited for.
 */
export class GracePeriodExceededError extends Error {
  override name = 'GracePeriodExceededError';
  constructor(
    message: string,
    readonly running: readonly string[] = [],
  ) {
    super(message);
  }
}

/** The reason given to bodies the scope cancels. */
export class ScopeClosedError extends Error {
  override name = 'ScopeClosedError';
  constructor(readonly outcome: Outcome) {
    super(`tsgi: the request is over (${outcome}); the body was not needed any more`);
  }
}

/** Thrown at a layer boundary when a layer hands back something that is not a Response. */
export class InvalidResponseError extends TypeError {
  override name = 'InvalidResponseError';
}

/**
 * Runs when the scope has closed, with the request and context it was registered for (a handler's
 * `request_finished`). It reads the outcome from the scope, so that no object is made for it.
 */
export type Finisher = (
  scope: RequestScope,
  request: Request | undefined,
  context: RequestContext | undefined,
) => unknown;

/** What a scope needs only on some requests, made on first use. */
interface Rare {
  whenIdle?: () => void;
  lazyId?: string;
  lazyState?: Record<string | symbol, unknown>;
  abort?: AbortController;
  info?: FinishInfo;
  finishedPromise?: Promise<FinishInfo>;
  resolveFinished?: (info: FinishInfo) => void;
  /** Why `context.signal` aborted before closing began ({@link RequestScope.abort}). */
  abortedWith?: unknown;
  /** Finishers after the first, with their request and context. */
  moreFinishers?: [Finisher, Request | undefined, RequestContext | undefined][];
  /** The host's signal this scope follows, while it is open. */
  host?: HostSignalListener;
}

const defaultReport = (error: unknown): void => console.error(error);

/**
 * The state of one request, shared by every layer and every handler that joins it.
 */
export class RequestScope {
  readonly context: RequestContext;
  /** The status sent to the client; the owner sets it when it sends the head. */
  status = 0;
  /** Body bytes written to the client; the owner adds to it. */
  bytesSent = 0;
  /** The last response a boundary passed on (the pass-through fast path). */
  last: unknown = NOTHING;
  /** The last promise a boundary returned (the pass-through fast path for promises). */
  lastPromise: unknown = NOTHING;
  /** How the request ended; undefined until closing begins. */
  outcome: Outcome | undefined = undefined;
  /** Milliseconds from the scope's start until closing began; 0 until then. */
  durationMs = 0;
  /** The exception the application or a body raised (the first one), if any. */
  failure: { error: unknown } | undefined = undefined;
  /**
   * The body length the response declared (its content-length; 0 for HEAD), or -1. The owner sets
   * it when it knows, so that {@link hostEnded} can tell a host that stopped once it had sent all of
   * that from a client that left.
   */
  declaredLength = -1;

  private readonly startedAt = clock.now();
  private readonly options: ScopeOptions;
  private active = 0;
  /**
   * The layers whose promise has not settled, in the order they returned it: innermost first, as an
   * inner layer returns its promise before the layer awaiting it does.
   */
  private running: string[] = NONE as never[];
  private bodies: BodyHandle[] = NONE as never[];
  /** The body the owner took with {@link own}: the one the client is sent. */
  private owned: BodyHandle | undefined = undefined;
  private known: unknown[] = NONE as never[];
  private callbacks: CloseCallback[] = NONE as never[];
  /** The first finisher (nearly always the only one: one handler per bus), with its request and context. */
  private finisher: Finisher | undefined = undefined;
  private finisherRequest: Request | undefined = undefined;
  private finisherContext: RequestContext | undefined = undefined;
  private claimed: object | object[] | undefined = undefined;
  /** 0 while open or waiting, 1 once the close callbacks have started, 2 once closing is done. */
  private phase: 0 | 1 | 2 = 0;
  private rare: Rare | undefined = undefined;

  constructor(options: ScopeOptions = {}) {
    this.options = options;
    this.context = new ScopeContext(this, options.remoteAddress);
  }

  /** Settles once every step of closing is done. */
  get finished(): Promise<FinishInfo> {
    // Made on first use: most requests close without anyone waiting, and a pending promise costs
    // several allocations on every one of them.
    const rare = this.extra();
    if (rare.finishedPromise === undefined) {
      rare.finishedPromise =
        this.phase === 2
          ? Promise.resolve(this.finishInfo())
          : new Promise((resolve) => {
              rare.resolveFinished = resolve;
            });
    }
    return rare.finishedPromise;
  }

  /** The request's id (a UUID), made on first use. */
  get id(): string {
    const rare = this.extra();
    rare.lazyId ??= crypto.randomUUID();
    return rare.lazyId;
  }

  /** The per-request bag behind `context.state`, made on first use. */
  get state(): Record<string | symbol, unknown> {
    const rare = this.extra();
    rare.lazyState ??= {};
    return rare.lazyState;
  }

  /** True once closing has begun. */
  get isClosing(): boolean {
    return this.outcome !== undefined;
  }

  /** The signal behind `context.signal`, made on first use. */
  get signal(): AbortSignal {
    const rare = this.extra();
    rare.abort ??= new AbortController();
    if (this.outcome !== undefined && this.outcome !== 'completed') rare.abort.abort(this.abortReason());
    return rare.abort.signal;
  }

  /**
   * Follows the host's `signal` (a fetch host's `request.signal`: Bun and Deno tell a fetch handler
   * that its client left only by aborting it): an abort before closing began is {@link hostEnded}.
   * The listener is removed when closing begins, so a signal the host keeps longer holds nothing of
   * the request, and a later abort is ignored (Deno also aborts `request.signal` after every
   * response it sent in full).
   */
  follow(signal: AbortSignal): void {
    if (this.outcome !== undefined) return;
    if (signal.aborted) {
      this.hostEnded();
      return;
    }
    const listener = new HostSignalListener(this, signal);
    this.extra().host = listener;
    signal.addEventListener('abort', listener);
  }

  /**
   * The host ended the exchange before the body did (it aborted `request.signal`, or cancelled the
   * body): `completed` when the client already had every byte the response declared (Deno stops
   * reading at the content-length, then aborts the signal and cancels the body), else `aborted`.
   */
  hostEnded(): void {
    if (this.outcome !== undefined) return;
    const declared = this.declaredLength;
    const outcome = declared >= 0 && this.bytesSent >= declared ? 'completed' : 'aborted';
    // The host has stopped reading the body it holds: end it cleanly, as an error in its hands would
    // be logged (Deno does) for a response that nobody reads any more.
    if (this.owned !== undefined) void this.owned.release(new ScopeClosedError(outcome));
    this.end(outcome);
  }

  /** A layer's promise settled: it is no longer running (inner layers settle first: usually the first). */
  private settled(layer: string): void {
    const running = this.running;
    if (running[0] === layer) running.shift();
    else {
      const index = running.indexOf(layer);
      if (index >= 0) running.splice(index, 1);
    }
    this.leave();
  }

  /** Code of the request started running (the handler holds the scope open around its chain). */
  enter(): void {
    this.active++;
  }

  /** That code returned or threw. */
  leave(): void {
    if (--this.active === 0) this.rare?.whenIdle?.();
  }

  /** Records the exception the application or a body raised (the first one wins). */
  fail(error: unknown): void {
    this.failure ??= { error };
  }

  /**
   * Aborts `context.signal` with `reason` while the request goes on (the host's request timeout: the
   * layers still running are told to stop, and the host answers the client itself). The reason is
   * recorded as the request's failure. Nothing once closing has begun.
   */
  abort(reason: unknown): void {
    if (this.outcome !== undefined) return;
    this.fail(reason);
    const rare = this.extra();
    rare.abortedWith ??= reason;
    rare.abort ??= new AbortController();
    rare.abort.abort(reason);
  }

  /**
   * Registers a response that crossed a layer boundary and returns what to hand on: the same response
   * when its body is already known, static or absent, else a copy whose body the scope can cancel.
   */
  track(response: Response, layer: string): Response {
    if (response === this.last) return response;
    checkResponse(response, layer);
    this.last = response;
    if (this.known.includes(response) || this.hasFixedBody(response)) return response;
    const body = response.body;
    if (body === null || this.known.includes(body)) {
      this.known = append(this.known, response);
      return response;
    }
    // A stream read partly, then released: what is left is not the body the response was made with.
    if (response.bodyUsed) throw new TypeError(CONSUMED);
    const handle = proxyBody(body, noop);
    this.bodies = append(this.bodies, handle);
    if (this.outcome !== undefined) void handle.cancel(new ScopeClosedError(this.outcome));
    const proxied = withBody(response, handle.stream);
    this.known = append(this.known, handle.stream, proxied);
    this.last = proxied;
    return proxied;
  }

  /**
   * True when `response`'s body is absent or fixed data, which holds nothing to release: tsgi's own
   * responses say so with their `STATIC_BODY` mark, any other is asked of the host's `fixedBody`.
   */
  hasFixedBody(response: Response): boolean {
    const mark = (response as { [STATIC_BODY]?: unknown })[STATIC_BODY];
    if (mark !== undefined) return Boolean(mark);
    return this.options.fixedBody?.(response) === true;
  }

  /**
   * A layer returned `promise`: the layer counts as running until it settles, and the response it
   * settles with is tracked as {@link track} does. Returns what to hand on.
   */
  trackLater(promise: Promise<Response>, layer: string): Promise<Response> {
    this.active++;
    this.running = append(this.running, layer);
    const tracked = promise.then(
      (response: Response) => {
        try {
          return this.track(response, layer);
        } finally {
          this.settled(layer);
        }
      },
      (error: unknown) => {
        this.settled(layer);
        throw error;
      },
    );
    this.lastPromise = tracked;
    return tracked;
  }

  /**
   * Takes the owner's own handle on the final body: the scope cancels it on close like any other,
   * and what is handed on counts in `bytesSent` unless `sent` is false (a host that reads the body
   * of a HEAD response but sends none of it: Deno does).
   */
  own(
    body: ReadableStream<Uint8Array>,
    onClose: (reason: BodyCloseReason) => void,
    sent = true,
  ): ReadableStream<Uint8Array> {
    const count = sent
      ? (bytes: number) => {
          this.bytesSent += bytes;
        }
      : undefined;
    // The body a boundary already proxied needs no second proxy: the owner takes over its handle.
    const known = this.bodies.find((handle) => handle.stream === body);
    if (known !== undefined && !body.locked) {
      known.watch(onClose, count);
      this.owned = known;
      return body;
    }
    const handle = proxyBody(body, onClose, count);
    this.bodies = append(this.bodies, handle);
    this.owned = handle;
    // A body handed over after the client left (an application that answered late) goes nowhere.
    if (this.outcome !== undefined) void handle.cancel(new ScopeClosedError(this.outcome));
    return handle.stream;
  }

  /** Registers a `context.onClose` callback. */
  onClose(callback: CloseCallback): void {
    if (typeof callback !== 'function') {
      throw new TypeError(`context.onClose(callback): callback must be a function, got ${typeof callback}`);
    }
    if (this.phase > 0) {
      // Registered after the request was over: run it now, still isolated.
      const late = this.runIsolated(callback, this.finishInfo());
      if (late !== undefined) void this.settle([late], ['late onClose callback', 'late onClose callbacks']);
      return;
    }
    this.callbacks = append(this.callbacks, callback);
  }

  /**
   * True the first time it is asked about `owner` for this request (a handler asks with its bus, so
   * that nested handlers on one bus emit the lifecycle signals once).
   */
  claim(owner: object): boolean {
    if (this.claimed === undefined) {
      this.claimed = owner;
      return true;
    }
    if (this.claimed === owner) return false;
    const claimed: object[] = Array.isArray(this.claimed) ? this.claimed : [this.claimed];
    if (claimed.includes(owner)) return false;
    claimed.push(owner);
    this.claimed = claimed;
    return true;
  }

  /**
   * Registers a finisher (a handler's `request_finished`), called with `request` and `context` after
   * every close callback. Finishers run innermost first: the last registered first.
   */
  addFinisher(finisher: Finisher, request?: Request, context?: RequestContext): void {
    if (this.finisher === undefined) {
      this.finisher = finisher;
      this.finisherRequest = request;
      this.finisherContext = context;
      return;
    }
    const rare = this.extra();
    rare.moreFinishers ??= [];
    rare.moreFinishers.push([finisher, request, context]);
  }

  /**
   * Ends the request with `outcome` (the first call decides; later calls just wait). Resolves when
   * every step of closing is done.
   */
  close(outcome: Outcome, error?: unknown): Promise<FinishInfo> {
    this.end(outcome, error);
    return this.finished;
  }

  /**
   * {@link close} for an owner that does not wait: the same steps, without making the `finished`
   * promise that most requests never need.
   */
  end(outcome: Outcome, error?: unknown): void {
    if (this.outcome !== undefined) return;
    if (error !== undefined) this.fail(error);
    this.outcome = outcome;
    this.durationMs = clock.now() - this.startedAt;
    const rare = this.rare;
    if (rare !== undefined) {
      if (rare.host !== undefined) {
        rare.host.signal.removeEventListener('abort', rare.host);
        rare.host = undefined;
      }
      if (outcome !== 'completed') rare.abort?.abort(this.abortReason());
    }
    // Steps 2 to 5: synchronous when there is nothing to wait for, as on most requests.
    if (this.active > 0 || this.bodies.some(isOpen)) void this.runCloseAfterWaits();
    else this.runCallbacks();
  }

  /**
   * What is known about the request, made on first use. Only called once the close callbacks have
   * started (phase 1 or later), when every field it reads is final.
   */
  private finishInfo(): FinishInfo {
    const rare = this.extra();
    if (rare.info === undefined) {
      const { status, bytesSent, durationMs, failure } = this;
      const outcome = this.outcome!;
      rare.info =
        failure === undefined
          ? { status, bytesSent, durationMs, outcome }
          : { status, bytesSent, durationMs, outcome, error: failure.error };
    }
    return rare.info;
  }

  private extra(): Rare {
    this.rare ??= {};
    return this.rare;
  }

  private report(error: unknown): void {
    (this.options.onError ?? defaultReport)(error);
  }

  private runIsolated(callback: CloseCallback, info: FinishInfo): Promise<void> | undefined {
    try {
      const result = callback(info);
      if (result instanceof Promise) return result.catch((error: unknown) => this.report(error));
    } catch (error) {
      this.report(error);
    }
    return undefined;
  }

  private abortReason(): unknown {
    return this.rare?.abortedWith ?? new ScopeClosedError(this.outcome ?? 'aborted');
  }

  private async runCloseAfterWaits(): Promise<void> {
    if (this.active > 0) await this.layersReturned();
    const open = this.bodies.filter(isOpen);
    if (open.length > 0) {
      // Made only when needed: an Error captures a stack, a cost every request would pay.
      const reason = new ScopeClosedError(this.outcome!);
      const cancels = open.map((handle) => handle.cancel(reason));
      await this.settle(cancels, ['response body', 'response bodies']);
    }
    this.runCallbacks();
  }

  /**
   * Step 2: resolves once every layer has returned or thrown, or once the grace period is over, when
   * the layers still running are reported by name (the innermost is the likely culprit).
   */
  private layersReturned(): Promise<void> {
    const gracePeriodMs = this.options.gracePeriodMs ?? 1000;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        const rare = this.extra();
        rare.whenIdle = undefined;
        // Innermost first: the application before the middleware waiting on it (a retry's second
        // next() is tracked after the layer that made it).
        const names = [...this.running].sort(
          (a, b) => Number(b.startsWith('the application')) - Number(a.startsWith('the application')),
        );
        const culprit = names[0] ?? 'the handler';
        const waiting = names.length > 1 ? ` (${names.slice(1).join(', ')} waiting on it)` : '';
        this.report(
          new GracePeriodExceededError(
            `tsgi: ${culprit}${waiting} was still running ${gracePeriodMs} ms after the request was over (${this.outcome}); it never returned, or ignores context.signal; request_finished was sent anyway`,
            names,
          ),
        );
        resolve();
      }, gracePeriodMs);
      this.extra().whenIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Step 4, then step 5 once every callback (async ones too) has settled. */
  private runCallbacks(): void {
    this.phase = 1;
    if (this.callbacks.length > 0) {
      const info = this.finishInfo();
      const pending: Promise<void>[] = [];
      for (const callback of this.callbacks.reverse()) {
        const result = this.runIsolated(callback, info);
        if (result !== undefined) pending.push(result);
      }
      if (pending.length > 0) {
        void this.settle(pending, ['onClose callback', 'onClose callbacks']).then(() => this.runFinishers());
        return;
      }
    }
    this.runFinishers();
  }

  private runFinishers(): void {
    this.running = NONE as never[];
    const more = this.rare?.moreFinishers;
    if (more !== undefined) {
      for (const [finisher, request, context] of more.reverse()) this.runFinisher(finisher, request, context);
    }
    if (this.finisher !== undefined)
      this.runFinisher(this.finisher, this.finisherRequest, this.finisherContext);
    this.bodies = NONE as never[];
    this.known = NONE as never[];
    this.owned = undefined;
    this.last = NOTHING;
    this.lastPromise = NOTHING;
    this.phase = 2;
    const resolveFinished = this.rare?.resolveFinished;
    if (resolveFinished !== undefined) resolveFinished(this.finishInfo());
    const onFinished = this.options.onFinished;
    if (onFinished !== undefined) this.runFinisher(onFinished, undefined, undefined);
  }

  private runFinisher(
    finisher: Finisher | (() => void),
    request: Request | undefined,
    context: RequestContext | undefined,
  ): void {
    try {
      finisher(this, request, context);
    } catch (error) {
      this.report(error);
    }
  }

  /** Waits for `pending` for at most the grace period, then reports how many did not settle. */
  private settle(pending: Promise<void>[], [one, many]: [string, string]): Promise<void> {
    let left = pending.length;
    const gracePeriodMs = this.options.gracePeriodMs ?? 1000;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.report(
          new GracePeriodExceededError(
            `tsgi: ${left} ${left === 1 ? one : many} did not settle within ${gracePeriodMs} ms of the request closing (a tee() branch nobody cancels, or a source that ignores cancel?); request_finished was sent anyway`,
          ),
        );
        resolve();
      }, gracePeriodMs);
      for (const promise of pending) {
        promise.then(() => {
          if (--left === 0) {
            clearTimeout(timer);
            resolve();
          }
        });
      }
    });
  }
}

/** Hears the host's abort for one scope: an object with `handleEvent`, not a closure per request. */
class HostSignalListener implements EventListenerObject {
  constructor(
    private readonly scope: RequestScope,
    readonly signal: AbortSignal,
  ) {}

  handleEvent(): void {
    this.scope.hostEnded();
  }
}

/** The scope of `context`, if it is a tsgi context. */
export function scopeOf(context: unknown): RequestScope | undefined {
  return (context as { [SCOPE]?: RequestScope } | undefined)?.[SCOPE];
}

/**
 * The context a scope hands out. Everything lives on the scope, reached through `this[SCOPE]`, so a
 * derived context (`Object.create(context)`, as `mount()` makes to add its own fields) shares the id,
 * the state bag, the signal and the close callbacks of the request.
 */
class ScopeContext implements RequestContext {
  readonly [SCOPE]: RequestScope;
  readonly remoteAddress: string | undefined;

  constructor(scope: RequestScope, remoteAddress: string | undefined) {
    this[SCOPE] = scope;
    this.remoteAddress = remoteAddress;
  }

  get id(): string {
    return this[SCOPE].id;
  }

  get signal(): AbortSignal {
    return this[SCOPE].signal;
  }

  get state(): Record<string | symbol, unknown> {
    return this[SCOPE].state;
  }

  onClose(callback: CloseCallback): void {
    this[SCOPE].onClose(callback);
  }
}

function checkResponse(value: unknown, layer: string): asserts value is Response {
  if (value !== null && typeof value === 'object' && typeof (value as Response).status === 'number') return;
  const got = value === null ? 'null' : typeof value;
  const hint =
    typeof value === 'function'
      ? 'did you list a middleware factory without calling it (gzip instead of gzip())?'
      : layer.startsWith('middleware')
        ? 'did you forget to return next(request)?'
        : 'did you forget a return statement?';
  throw new InvalidResponseError(`tsgi: ${layer} returned ${got} instead of a Response — ${hint}`);
}

const CONSUMED =
  'tsgi: this response body was already read (in part or whole); a layer returned a response whose body it had consumed. Return a new Response instead.';

function noop(): void {}

/** `list` with `items` added: a new array in place of {@link NONE}, else the same one. */
function append<T>(list: T[], ...items: T[]): T[] {
  if ((list as readonly T[]) === NONE) return items;
  list.push(...items);
  return list;
}

function isOpen(handle: BodyHandle): boolean {
  return !handle.closed;
}
