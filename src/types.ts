import type { SignalBus } from './signals.ts';

/**
 * The tsgi protocol, as types.
 *
 * An application is a WHATWG fetch handler that also receives a {@link RequestContext}; a middleware
 * wraps an application and returns an application, exactly like WSGI middleware. Everything else in
 * tsgi (the handler, the server adapter, the built-in middleware) is written against these types.
 */

/**
 * A tsgi application: a fetch handler that also receives the request's context.
 *
 * @example
 * const application: Application = () => new Response('Hello World');
 */
export type Application = (request: Request, context: RequestContext) => Response | Promise<Response>;

/**
 * A middleware wraps an application and returns an application (WSGI's idea):
 * `application = helloWorld()(application)`.
 *
 * @example
 * const poweredBy: Middleware = (next) => async (request, context) => {
 *   const response = await next(request, context);
 *   response.headers.set('x-powered-by', 'tsgi');
 *   return response;
 * };
 */
export type Middleware = (next: Application) => Application;

/**
 * How the exchange with the client ended.
 * - `completed`: the whole response (an error page too) was written to the client;
 * - `aborted`: the client went away first;
 * - `errored`: the response could not be completed because its body or the write failed.
 */
export type Outcome = 'completed' | 'aborted' | 'errored';

/** What is known about a request once its scope has closed. */
export interface FinishInfo {
  /** The status sent to the client, 0 if none was. */
  readonly status: number;
  /** Body bytes written to the client. */
  readonly bytesSent: number;
  /** Milliseconds from the start of the request until the exchange with the client was over. */
  readonly durationMs: number;
  readonly outcome: Outcome;
  /** The exception the application or a body raised, if one did (also when a 500 page was then sent). */
  readonly error?: unknown;
}

/** A callback registered with {@link RequestContext.onClose}. */
export type CloseCallback = (info: FinishInfo) => void | Promise<void>;

/**
 * Per-request information and hooks, created by the request scope and passed to every layer.
 *
 * For a resource held for the request (a database client, a transaction), use `scoped()`: it
 * acquires on first use and releases exactly once, told the outcome. By hand it reads:
 *
 * @example
 * const app: Application = async (request, context) => {
 *   const client = await pool.connect(); // await it: a Promise has no release(), and the client leaks
 *   context.onClose(() => client.release());
 *   const { rows } = await client.query('SELECT now() AS now');
 *   return new Response(`${context.remoteAddress} asked at ${rows[0].now}`);
 * };
 */
export interface RequestContext {
  /** A unique id for the request (a UUID). */
  readonly id: string;
  /** The client's address, when the host knows it. */
  readonly remoteAddress: string | undefined;
  /** Aborts when the client goes away (or the request scope closes for any other reason first). */
  readonly signal: AbortSignal;
  /** A per-request bag for middleware to share values with the layers inside it. */
  readonly state: Record<string | symbol, unknown>;
  /**
   * Runs `callback` when the request is over, before `request_finished` is emitted. Callbacks run
   * last-registered first; one that throws or rejects is reported and the others still run.
   */
  onClose(callback: CloseCallback): void;
}

/** Payload of `request_started`: emitted once per request, before any middleware or application code runs. */
export interface RequestStartedEvent {
  readonly sender: Handler;
  readonly request: Request;
  readonly context: RequestContext;
}

/** Payload of `request_finished`: emitted once per request, after the exchange and all cleanup are over. */
export interface RequestFinishedEvent extends FinishInfo {
  readonly sender: Handler;
  readonly request: Request;
  readonly context: RequestContext;
}

/** Payload of `got_request_exception`: emitted when the application or a middleware throws. */
export interface RequestExceptionEvent {
  readonly sender: Handler;
  readonly request: Request;
  readonly context: RequestContext;
  readonly error: unknown;
}

/** The events of a {@link SignalBus} and their payloads. */
export interface SignalEvents {
  request_started: [event: RequestStartedEvent];
  request_finished: [event: RequestFinishedEvent];
  got_request_exception: [event: RequestExceptionEvent];
}

/** The name of a signal. */
export type SignalName = keyof SignalEvents;

/** A receiver of a signal; it may be async (its rejection is reported, never unhandled). */
export type Receiver<E extends SignalName> = (...args: SignalEvents[E]) => void | Promise<void>;

/**
 * A site's entry point (Django's WSGIHandler): an {@link Application} that emits the lifecycle
 * signals, runs the middleware, and turns exceptions into error responses.
 */
export interface Handler extends Application {
  /** The bus this handler emits on; its `onError` hook is where the handler's errors are reported. */
  readonly signals: SignalBus;
  /** Requests this handler has started whose `request_finished` has not yet been emitted. */
  readonly inFlight: number;
  /**
   * A plain fetch handler for hosts that call one (`export default { fetch: handler.fetch }`); it is
   * bound, and makes its own request scope that closes when the returned body is over.
   */
  readonly fetch: (request: Request) => Promise<Response>;
}
