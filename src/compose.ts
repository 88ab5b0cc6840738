/**
 * Building pipelines: `compose()`, `defineMiddleware()`, and the layer boundary they put between
 * every two layers.
 *
 * The first middleware listed is the outermost: `compose(a, b, c)(app)` is `a(b(c(app)))`, so a
 * request enters `a` first and the response leaves `a` last (onion order). The chain is built once;
 * a request then pays one call per layer and one boundary per layer.
 *
 * A boundary is how the request scope learns about every response that crosses from one layer to the
 * next. It counts a layer that returned a promise as running until the promise settles (the scope
 * waits for such layers before it finishes; synchronous code needs no count, as nothing can close the
 * scope while it runs and the handler holds the scope open around its chain), checks that a layer
 * returned a Response, and hands a new stream body on through a proxy the scope can cancel; a body
 * that is fixed data (tsgi's mark, or the host's `fixedBody` oracle, see `scope.hasFixedBody()`) is
 * handed on as it is. A layer that passes on the response (or the promise) it got costs one identity
 * check. Outside a tsgi scope (a foreign host calling a composed application directly) a boundary
 * calls straight through.
 */
import { scopeOf } from './scope.ts';
import type { Application, Middleware, RequestContext } from './types.ts';

const BOUNDARY: unique symbol = Symbol('tsgi.boundary');

type Boundary = Application & { [BOUNDARY]?: true };

/**
 * Puts a layer boundary in front of `inner`, which `layer` names in error messages (for example
 * "middleware gzipMiddleware" or "the application"). A boundary is never doubled.
 */
export function boundary(inner: Application, layer: string): Application {
  if ((inner as Boundary)[BOUNDARY]) return inner;
  const crossing: Boundary = function tsgiBoundary(request, context) {
    const scope = scopeOf(context);
    if (scope === undefined) return inner(request, context);
    // No enter()/leave() around a synchronous call: nothing can close the scope while it runs (its
    // owner closes it from events, and the handler holds the scope open around the whole chain).
    // A layer still running is one whose promise has not settled.
    const result = inner(request, context);
    // A pass-through layer returned the response or promise an inner boundary already tracks.
    if (result === scope.last || result === scope.lastPromise) return result;
    if (result instanceof Promise) return scope.trackLater(result, layer);
    return scope.track(result, layer);
  };
  crossing[BOUNDARY] = true;
  return crossing;
}

/**
 * Composes middleware into one middleware; the first listed is the outermost.
 *
 * @example
 * const stack = compose(logging(), gzip(), helloWorld());
 * const application = stack(site); // logging(gzip(helloWorld(site)))
 */
export function compose(...middleware: Middleware[]): Middleware {
  middleware.forEach((entry, index) => {
    if (typeof entry !== 'function') {
      throw new TypeError(
        `compose(): the middleware at position ${index} is ${entry === null ? 'null' : typeof entry}, not a function — did you forget to call a factory or to export it?`,
      );
    }
  });
  return function composed(app: Application): Application {
    if (typeof app !== 'function') {
      throw new TypeError(`compose(...)(app): the application must be a function, got ${typeof app}`);
    }
    let chain = boundary(app, describeApplication(app));
    for (let index = middleware.length - 1; index >= 0; index--) {
      const factory = middleware[index]!;
      const layer = factory(chain);
      if (typeof layer !== 'function') {
        throw new TypeError(
          `compose(): middleware ${factory.name || `at position ${index}`} returned ${typeof layer} instead of an application when given the next one — a middleware is (next) => (request, context) => Response`,
        );
      }
      chain = boundary(layer, `middleware ${layer.name || factory.name || `at position ${index}`}`);
    }
    return chain;
  };
}

/** What an onion-style middleware calls to run the layers inside it. */
export type Next = (request?: Request) => Promise<Response>;

/**
 * Defines a middleware from an onion-style function: `next(request?)` runs the wrapped application
 * (with the same request unless given another). It may be called zero times (short-circuit), once,
 * or several times (a retry): every inner body that is not passed on is cancelled when the request
 * is over.
 *
 * @example
 * const timing = defineMiddleware(async (request, context, next) => {
 *   const started = performance.now();
 *   const response = await next();
 *   response.headers.set('server-timing', `app;dur=${performance.now() - started}`);
 *   return response;
 * });
 */
export function defineMiddleware(
  handle: (request: Request, context: RequestContext, next: Next) => Response | Promise<Response>,
): Middleware {
  if (typeof handle !== 'function') {
    throw new TypeError(`defineMiddleware(handle): handle must be a function, got ${typeof handle}`);
  }
  const name = handle.name || 'definedMiddleware';
  const middleware = (inner: Application): Application => {
    const wrapped = boundary(inner, describeApplication(inner));
    const layer = (request: Request, context: RequestContext): Response | Promise<Response> =>
      handle(request, context, (nextRequest = request) => {
        try {
          return Promise.resolve(wrapped(nextRequest, context));
        } catch (error) {
          return Promise.reject(error);
        }
      });
    Object.defineProperty(layer, 'name', { value: name });
    return layer;
  };
  Object.defineProperty(middleware, 'name', { value: name });
  return middleware;
}

function describeApplication(app: Application): string {
  return app.name && app.name !== 'tsgiBoundary' ? `the application ${app.name}` : 'the application';
}
