/**
 * `helloWorld()`: answers one path with a fixed text and passes every other request on — the seed's
 * HelloWorldApplication, and the model for every tsgi middleware: a factory that reads its options
 * once and returns a named middleware, no state between requests, one test file beside it.
 *
 * Use it as a liveness check (`helloWorld({ path: '/healthz', text: 'ok' })`) or to see that a site
 * is wired up. It answers every method on that path, with `text/plain; charset=utf-8`.
 */
import type { Middleware } from '../src/index.ts';

/** Options of {@link helloWorld}. */
export interface HelloWorldOptions {
  /** The path to answer, matched exactly (no query). Default: `/hello`. */
  path?: string;
  /** The body of the answer. Default: `Hello World`. */
  text?: string;
}

/**
 * Answers `options.path` with `options.text`; every other request goes to the wrapped application.
 *
 * @example
 * application = helloWorld()(application); // GET /hello → "Hello World"
 * const site = createHandler(app, { middleware: [helloWorld({ path: '/healthz', text: 'ok' })] });
 */
export function helloWorld(options: HelloWorldOptions = {}): Middleware {
  const path = options.path ?? '/hello';
  const text = options.text ?? 'Hello World';
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(`helloWorld({ path }): path must start with '/', got ${JSON.stringify(path)}`);
  }
  if (typeof text !== 'string') {
    throw new TypeError(`helloWorld({ text }): text must be a string, got ${typeof text}`);
  }
  return function helloWorldMiddleware(next) {
    return function helloWorld(request, context) {
      if (new URL(request.url).pathname !== path) return next(request, context);
      return new Response(text, { headers: { 'content-type': 'text/plain; charset=utf-8' } });
    };
  };
}
