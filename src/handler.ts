/**
 * `createHandler()`: a site's entry point, as Django's WSGIHandler is.
 *
 * A handler wraps the application in the site's middleware (the first listed is the outermost),
 * emits `request_started` before any of it runs, turns an exception into `got_request_exception`
 * plus a 500 page (plain, with the stack only when `debug` is on), and has the request's
 * `request_finished` emitted when its scope closes.
 *
 * Called with a tsgi context (by the Node adapter, or by an enclosing handler or `mount()`), it joins
 * that request scope. Handlers nest: when one handler runs inside another that emits on the same bus,
 * only the outer one emits `request_started` and `request_finished` (a receiver that releases a
 * connection must run once per request, not once per handler); each still reports its own
 * exceptions and counts its own `inFlight`. Called without one (`handler.fetch(request)`, or a foreign host passing only
 * the request or a context of its own), it makes its own scope, which closes when the body of the
 * response it returns is read to the end (`completed`), cancelled (`aborted`) or fails (`errored`),
 * or when the host aborts `request.signal` first (`aborted`: how Bun and Deno say the client left,
 * also while the application is still running). A scope that has closed ignores a later abort: Deno
 * aborts `request.signal` after every response it sent in full, too.
 *
 * Errors reach the operator through the bus's one hook, `signals.onError(error, where, request)`
 * (default: one line to stderr saying what failed and on which request, then the stack):
 * - an exception of the application or a middleware becomes `got_request_exception`, a 500 page, and
 *   a report as `'application'`, from the handler that caught it;
 * - an exception recorded on the request that did not become a 500 — a body that failed after the
 *   head went out, a Node listener that failed after starting its response — is reported as
 *   `'response'` once the request is over, by the handler that emits `request_finished` (so once per
 *   bus, however handlers nest);
 * - problems closing the request (grace period exceeded, a failing `onClose`) as `'request_scope'`.
 */
import { withBody } from './body.ts';
import { compose } from './compose.ts';
import { formatError } from './report.ts';
import { type Finisher, RequestScope, ScopeClosedError, scopeOf } from './scope.ts';
import { signals as defaultSignals, type SignalBus } from './signals.ts';
import type { Application, Handler, Middleware, RequestContext, RequestFinishedEvent } from './types.ts';

const HANDLER: unique symbol = Symbol.for('tsgi.handler');

/**
 * Requests whose exception a handler answered with its 500 (and reported): the handler that emits
 * `request_finished` reports any other exception recorded on the request. Filled only on the failure
 * path, keyed by request scope and weakly held, so it neither costs the success path nor lets one site
 * see another's requests.
 */
const answered = new WeakSet<RequestScope>();

/**
 * For a host that fails a request itself (the Node adapter's request timeout) and has reported it:
 * the handler that emits `request_finished` does not report that failure again.
 */
export function markAnswered(scope: RequestScope): void {
  answered.add(scope);
}

/**
 * True when `app` was made by {@link createHandler} (so it emits signals itself).
 *
 * @example
 * const site = isHandler(app) ? app : createHandler(app);
 */
export function isHandler(app: unknown): app is Handler {
  return typeof app === 'function' && (app as { [HANDLER]?: true })[HANDLER] === true;
}

const STACK: unique symbol = Symbol.for('tsgi.stack');

/** What a handler was built from: see {@link stackOf}. */
export interface HandlerStack {
  /** The application inside the middleware. */
  readonly application: Application;
  /** The middleware, outermost first, as the handler was given it. */
  readonly middleware: readonly Middleware[];
  /** The bus the handler emits on. */
  readonly signals: SignalBus;
  /** Whether its 500 pages show the exception. */
  readonly debug: boolean;
}

/**
 * The parts a handler made by {@link createHandler} was built from, or undefined for any other value
 * (a plain application, a handler wrapped in more middleware by hand). For tools that rebuild a
 * site's stack piece by piece, as `tsgi bench` does; requests never read it.
 *
 * @example
 * const stack = stackOf(handler);
 * stack?.middleware.map((layer) => layer.name); // ['loggingMiddleware', 'gzipMiddleware']
 */
export function stackOf(handler: unknown): HandlerStack | undefined {
  return isHandler(handler) ? (handler as { [STACK]?: HandlerStack })[STACK] : undefined;
}

/** Options of {@link createHandler}. */
export interface HandlerOptions {
  /** The site's middleware, outermost first. Default: none. */
  middleware?: readonly Middleware[];
  /** The bus to emit on. Default: the process-wide `signals`. */
  signals?: SignalBus;
  /**
   * Show the exception and its stack on 500 pages. Default: false (the page says only "Internal
   * Server Error"; the stack goes to `signals.onError` either way). Never turn it on in production.
   */
  debug?: boolean;
  /**
   * For scopes this handler makes itself: how long body cancellations and close callbacks may take
   * once the request is over before `request_finished` is sent anyway (ms). Default: 1000.
   */
  gracePeriodMs?: number;
}

/**
 * Builds a site's {@link Handler} from its application and middleware.
 *
 * An exception of the application or a middleware becomes a plain 500 page, `got_request_exception`,
 * and a report to the bus's `onError` hook with its stack (see the module notes for what else is
 * reported there). Point that hook at your logger to get errors out of stderr.
 *
 * @example
 * const handler = createHandler(application, { middleware: [logging(), gzip()] });
 * export default { fetch: handler.fetch };
 *
 * @example
 * // Errors as JSON lines instead of the default stderr text:
 * import { createHandler, formatError, signals } from 'tsgi';
 * signals.onError = (error, where, request) => {
 *   process.stderr.write(`${JSON.stringify({
 *     level: 'error',
 *     where, // 'application' | 'response' | 'request_scope' | the signal whose receiver failed
 *     method: request?.method,
 *     path: request && new URL(request.url).pathname,
 *     stack: formatError(error),
 *   })}\n`);
 * };
 * const handler = createHandler(application);
 */
export function createHandler(app: Application, options: HandlerOptions = {}): Handler {
  if (typeof app !== 'function') {
    throw new TypeError(`createHandler(app): app must be an application function, got ${typeof app}`);
  }
  const middleware = options.middleware ?? [];
  if (!Array.isArray(middleware)) {
    throw new TypeError('createHandler(app, { middleware }): middleware must be an array, outermost first');
  }
  const bus = options.signals ?? defaultSignals;
  const debug = options.debug ?? false;
  const scopeOptions = {
    gracePeriodMs: options.gracePeriodMs ?? 1000,
    onError: (error: unknown) => bus.report(error, 'request_scope'),
  };
  const chain = compose(...middleware)(app);
  let inFlight = 0;

  // Everything a request needs is made here, once per handler: a closure made per request costs an
  // allocation, and more under tsx, which names every named closure when it is made.
  const emitFinished: Finisher = (scope, request, ctx) => {
    inFlight--;
    // The one place every request passes once per bus: what went wrong after the response started
    // (a body that failed, a Node listener that failed late) is reported here, once.
    const failure = scope.failure;
    if (failure !== undefined && !answered.has(scope)) bus.report(failure.error, 'response', request);
    return bus.dispatch('request_finished', finishedEvent(handler, request!, ctx!, scope));
  };
  const countFinished: Finisher = () => {
    inFlight--;
  };

  const handle = function tsgiHandler(
    request: Request,
    context?: RequestContext,
  ): Promise<Response> | Response {
    const joined = scopeOf(context);
    const scope = joined ?? new RequestScope(scopeOptions);
    const ctx = joined === undefined ? scope.context : (context as RequestContext);
    inFlight++;
    // One request, one pair of lifecycle signals per bus: when handlers nest (a site wrapped by hand
    // around a handler, a handler mounted in another) only the outermost one on a bus emits them.
    if (scope.claim(bus)) {
      scope.addFinisher(emitFinished, request, ctx);
      bus.dispatch('request_started', { sender: handler, request, context: ctx });
    } else {
      scope.addFinisher(countFinished);
    }
    const result = run(scope, request, ctx);
    if (joined !== undefined) return result;
    // Only a scope of our own listens to the host: the Node adapter passes a context and says
    // itself when the client left. Followed once the chain has started, so that an abort seen
    // here cannot close the scope before the application ran.
    const signal = request.signal;
    if (signal) scope.follow(signal);
    return result instanceof Promise
      ? closeLater(scope, request, result)
      : closeWithBody(scope, request, result);
  };

  /**
   * Runs the chain, holding the scope open while it runs (a boundary counts a layer as still running
   * once it has returned a promise that has not settled).
   */
  function run(scope: RequestScope, request: Request, ctx: RequestContext): Response | Promise<Response> {
    scope.enter();
    try {
      const result = chain(request, ctx);
      return result instanceof Promise ? catchLater(result, scope, request, ctx) : result;
    } catch (error) {
      return failed(scope, request, ctx, error);
    } finally {
      scope.leave();
    }
  }

  function catchLater(
    result: Promise<Response>,
    scope: RequestScope,
    request: Request,
    ctx: RequestContext,
  ): Promise<Response> {
    // The chain counts as running until its failure was caught here: the boundaries stop counting a
    // layer once its promise rejects, and a scope whose exchange was already over would otherwise
    // finish in between (request_finished before got_request_exception, and without the error).
    scope.enter();
    return result.then(
      (response) => {
        scope.leave();
        return response;
      },
      (error: unknown) => {
        try {
          return failed(scope, request, ctx, error);
        } finally {
          scope.leave();
        }
      },
    );
  }

  function failed(scope: RequestScope, request: Request, ctx: RequestContext, error: unknown): Response {
    scope.fail(error);
    answered.add(scope);
    bus.dispatch('got_request_exception', { sender: handler, request, context: ctx, error });
    // The scope's own reason for cancelling a body, let through by a layer that read it once the
    // request was over (the client left, or the response was complete), is the end of the request
    // itself, not a fault to show the operator.
    if (!(error instanceof ScopeClosedError && scope.isClosing)) bus.report(error, 'application', request);
    return errorResponse(error, debug);
  }

  const handler = handle as Handler;
  const fetch = (request: Request): Promise<Response> => Promise.resolve(handle(request));
  Object.defineProperties(handler, {
    signals: { value: bus, enumerable: true },
    inFlight: { get: () => inFlight, enumerable: true },
    fetch: { value: fetch, enumerable: true },
    [HANDLER]: { value: true },
    [STACK]: {
      value: Object.freeze({
        application: app,
        middleware: Object.freeze([...middleware]),
        signals: bus,
        debug,
      }),
    },
  });
  return handler;
}

/** The request_finished payload, field by field: an object spread costs more, on every request. */
function finishedEvent(
  sender: Handler,
  request: Request,
  context: RequestContext,
  scope: RequestScope,
): RequestFinishedEvent {
  const { status, bytesSent, durationMs, failure } = scope;
  const outcome = scope.outcome!;
  return failure === undefined
    ? { sender, request, context, status, bytesSent, durationMs, outcome }
    : { sender, request, context, status, bytesSent, durationMs, outcome, error: failure.error };
}

function closeLater(scope: RequestScope, request: Request, result: Promise<Response>): Promise<Response> {
  return result.then((response) => closeWithBody(scope, request, response));
}

/** For a scope of our own: it closes when the body we return is over. */
function closeWithBody(scope: RequestScope, request: Request, response: Response): Response {
  if (scope.isClosing) return answeredLate(scope, response);
  scope.status = response.status;
  scope.declaredLength = declaredLength(request, response);
  const body = response.body;
  if (body === null) {
    scope.end('completed');
    return response;
  }
  // A HEAD response's body reaches no client, even when the host reads some of it (Deno does).
  const sent = request.method !== 'HEAD';
  try {
    const stream = scope.own(
      body,
      (reason) => {
        if (reason.outcome === 'completed') scope.end('completed');
        else if (reason.outcome === 'cancelled') scope.hostEnded();
        else scope.end('errored', reason.error);
      },
      sent,
    );
    // own() hands back the boundary's proxy itself when it already holds this body: no new Response.
    return stream === body ? response : withBody(response, stream);
  } catch (error) {
    scope.end('errored', error);
    throw error;
  }
}

/**
 * The client left before the application answered (the host aborted request.signal): nothing of
 * this response is sent, so status and bytes stay 0. Its body is cancelled at once (by the layer
 * boundary that tracked it, or by own(), which does so once closing has begun), and the host gets
 * an answer without one: Deno logs the error of a cancelled body in its hands, though nobody reads it.
 */
function answeredLate(scope: RequestScope, response: Response): Response {
  const body = response.body;
  if (body === null) return response;
  if (!body.locked) scope.own(body, ignore);
  return new Response(null, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

function ignore(): void {}

/** How many body bytes `response` says it has (none for HEAD), or -1 if it does not say. */
function declaredLength(request: Request, response: Response): number {
  if (request.method === 'HEAD') return 0;
  const header = response.headers.get('content-length');
  if (header === null) return -1;
  const length = Number(header);
  return Number.isSafeInteger(length) && length >= 0 ? length : -1;
}

function errorResponse(error: unknown, debug: boolean): Response {
  // formatError, not String(error): a thrown null-prototype object has no toString to call.
  const detail = debug ? `\n\n${formatError(error)}\n` : '\n';
  return new Response(`Internal Server Error${detail}`, {
    status: 500,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
}
