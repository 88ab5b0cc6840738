/**
 * `tsgi/host`: for hosts — a server or runtime adapter that owns request scopes itself, as tsgi's
 * Node adapter does — and for middleware that needs to know whether a body is fixed data. Sites and
 * ordinary middleware never need these; the root export (`tsgi`) is the public API.
 *
 * - {@link RequestScope}: one request's lifecycle (its context, signal, tracked bodies, close
 *   callbacks and finishers); a host creates one per request, passes `scope.context` to the
 *   application, sets `status`/`bytesSent` as it writes, and calls `end(outcome)` when the exchange
 *   with the client is over.
 * - {@link scopeOf}: the scope behind a context a host made (undefined for any other context).
 * - {@link STATIC_BODY} / {@link isStaticBody}: the mark of tsgi's own responses whose body is absent
 *   or fixed data (a string, bytes, a Blob), which holds nothing to release and is never wrapped in a
 *   stream. About a runtime's own responses only the host knows: it passes a `fixedBody` oracle in
 *   {@link ScopeOptions}, and `scope.hasFixedBody(response)` asks the mark, then the oracle (the Node
 *   adapter's knows undici; without one such a body is treated as a stream: correct, only slower).
 * - {@link fixedBody}: the string or bytes of a response whose body is fixed data nobody has read
 *   (a FastResponse's, or undici's), without making a stream of it — for middleware that transforms
 *   such a body whole, as `gzip()` does; undefined for any other body.
 * - {@link stackOf}: what a handler was built from (its application, middleware, bus and `debug`),
 *   for tools that rebuild a site's stack piece by piece, as `tsgi bench` does.
 *
 * @example
 * import { RequestScope } from 'tsgi/host';
 * const scope = new RequestScope({ remoteAddress: socket.remoteAddress });
 * const response = await handler(request, scope.context);
 * // … write it, then:
 * scope.end('completed');
 */
export { isStaticBody, STATIC_BODY } from './body.ts';
export { type HandlerStack, stackOf } from './handler.ts';
export { fixedBody } from './node/fast-response.ts';
export { type Finisher, RequestScope, type ScopeOptions, scopeOf } from './scope.ts';
