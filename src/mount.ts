/**
 * `mount()`: dispatch by path prefix, to combine applications — tsgi, Hono, anything fetch-shaped,
 * Express through `fromNodeListener()` — in one site (werkzeug's DispatcherMiddleware).
 *
 * The longest matching prefix wins. A prefix matches its own path and everything below it: `/api`
 * takes `/api` and `/api/users` but not `/apix`. The mounted application sees the URL without the
 * prefix (WSGI's SCRIPT_NAME / PATH_INFO split: `/api/users?page=2` arrives as `/users?page=2`, and
 * `/api` as `/`), and a context that keeps the rest in {@link MountContext.mountPath} and
 * {@link MountContext.originalUrl}. Nested mounts add up (`/api` inside `/v1` is `/v1/api`).
 * Prefixes are compared with the path as sent (percent-encoded), and a trailing slash on a prefix is
 * ignored. A request nothing matches goes to `fallback`, or gets a plain 404.
 *
 * What can be mounted:
 * - a tsgi application or `Handler`, called as `app(request, context)` — a handler joins the
 *   request's scope, so its signals belong to the same request;
 * - an object with a `fetch` method (a Hono app, an `export default { fetch }` module), called as
 *   `app.fetch(request, context)` (Hono sees the context as `c.env`).
 *
 * Every mounted application sits behind a layer boundary, so the request scope tracks its body and
 * cancels it if nobody reads it, whatever framework made it.
 */
import { boundary } from './compose.ts';
import type { Application, CloseCallback, RequestContext } from './types.ts';

/** Something `mount()` can dispatch to: a tsgi application or an object with a `fetch` method. */
export type Mountable =
  | Application
  | { fetch(request: Request, context: RequestContext): Response | Promise<Response> };

/** The context a mounted application receives. */
export interface MountContext extends RequestContext {
  /** The part of the path that led here (WSGI's SCRIPT_NAME), `''` at the root: `/api`. */
  readonly mountPath: string;
  /** The URL as the site received it, before any prefix was stripped. */
  readonly originalUrl: string;
}

/**
 * Dispatches each request to the application mounted at the longest prefix of its path.
 *
 * @example
 * const site = mount({
 *   '/api': createHandler(api),             // tsgi: sees /api/users as /users
 *   '/hono': honoApp,                       // anything with fetch()
 *   '/legacy': fromNodeListener(expressApp),
 * }, frontPage);                            // everything else (default: 404)
 */
export function mount(apps: Record<string, Mountable>, fallback?: Mountable): Application {
  if (apps === null || typeof apps !== 'object' || Array.isArray(apps)) {
    throw new TypeError(
      "mount(apps): apps must be an object of prefixes to applications, like { '/api': api }",
    );
  }
  const routes = Object.entries(apps).map(([prefix, app]) => {
    if (typeof prefix !== 'string' || !prefix.startsWith('/')) {
      throw new TypeError(`mount(): the prefix '${prefix}' must start with '/' — did you mean '/${prefix}'?`);
    }
    if (/[?#]/.test(prefix)) {
      throw new TypeError(`mount(): the prefix '${prefix}' is a path; it cannot hold a query or fragment`);
    }
    return { prefix: prefix.replace(/\/+$/, ''), app: asApplication(app, `mounted at '${prefix}'`) };
  });
  const seen = new Set<string>();
  for (const { prefix } of routes) {
    if (seen.has(prefix)) throw new TypeError(`mount(): the prefix '${prefix || '/'}' is given twice`);
    seen.add(prefix);
  }
  routes.sort((a, b) => b.prefix.length - a.prefix.length);
  const otherwise = fallback === undefined ? notFound : asApplication(fallback, 'given as the fallback');

  return function mountApplication(request, context) {
    const url = new URL(request.url);
    const path = url.pathname;
    for (const { prefix, app } of routes) {
      if (path.length !== prefix.length ? path.startsWith(`${prefix}/`) : path === prefix) {
        url.pathname = path.slice(prefix.length) || '/';
        return app(strip(request, url.href), mounted(context, prefix, request.url));
      }
    }
    return otherwise(request, context);
  };
}

function asApplication(app: Mountable, where: string): Application {
  const layer = `the application ${where}`;
  if (typeof app === 'function') return boundary(app, layer);
  if (app !== null && typeof app === 'object' && typeof app.fetch === 'function') {
    return boundary((request, context) => app.fetch(request, context), layer);
  }
  const got = app === null ? 'null' : typeof app;
  throw new TypeError(
    `mount(): the application ${where} is ${got}, not a function or an object with a fetch() method — did you pass a module instead of its default export?`,
  );
}

/** The request with another URL; the body (a stream) moves over unread. */
function strip(request: Request, url: string): Request {
  return new Request(url, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    signal: request.signal,
    duplex: 'half',
  } as RequestInit);
}

/**
 * A context for the mounted application. It derives from the parent (so the request scope and
 * anything a host added come along) and reads `id`, `state`, `signal` and `onClose` from it
 * explicitly: getters on the parent may rely on being called on the parent itself.
 */
function mounted(context: RequestContext, prefix: string, url: string): MountContext {
  const parent = context as Partial<MountContext>;
  return Object.create(context, {
    mountPath: { value: (parent.mountPath ?? '') + prefix, enumerable: true },
    originalUrl: { value: parent.originalUrl ?? url, enumerable: true },
    id: { get: () => context.id, enumerable: true },
    state: { get: () => context.state, enumerable: true },
    signal: { get: () => context.signal, enumerable: true },
    onClose: { value: (callback: CloseCallback) => context.onClose(callback) },
  }) as MountContext;
}

function notFound(): Response {
  return new Response('Not Found\n', {
    status: 404,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
}
