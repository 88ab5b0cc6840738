/**
 * The loopback targets: which framework a target runs, with how many pass-through layers, and the
 * contract every server file in servers/ follows.
 *
 * A target is named `<framework>-<layers>` (`tsgi-10`, `express-0`); `raw` is `node:http` alone.
 * Variants: `tsgi-<n>-undici` (tsgi with `fastResponse: false`, so the application's responses are
 * undici's own), `srvx-<n>-undici` (srvx answering with the global `Response` instead of its
 * `FastResponse`), and `raw-length` (raw with a Content-Length on every answer, framed as tsgi frames
 * them). Any layer count parses (`tsgi-50`, `koa-3`), but only
 * {@link DEFAULT_TARGETS} run unless `--targets` asks for others.
 *
 * "At N layers" means each framework's own pass-through middleware, N times: tsgi
 * `(next) => (request, context) => next(request, context)` (plus a receiver on `request_started` and
 * on `request_finished` at every layer count, so every request goes through the whole lifecycle);
 * srvx its `middleware` option `(request, next) => next()`; h3 `app.use((event, next) => next())`;
 * Hono `app.use(async (c, next) => { await next() })`; Fastify `onRequest` hooks
 * `(request, reply, done) => done()`; Koa `async (ctx, next) => next()`; Express
 * `(req, res, next) => next()`. raw has no middleware and takes no layer count.
 */
import type { Server } from 'node:http';

export const FRAMEWORKS = ['raw', 'tsgi', 'srvx', 'hono', 'h3', 'fastify', 'koa', 'express'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/** The npm package whose version each framework's results record. */
export const PACKAGES: Readonly<Record<Framework, string | undefined>> = {
  raw: undefined,
  tsgi: undefined,
  srvx: 'srvx',
  hono: '@hono/node-server',
  h3: 'h3',
  fastify: 'fastify',
  koa: 'koa',
  express: 'express',
};

/** What a server file is asked to start. */
export interface ServerOptions {
  /** Pass-through middleware layers in front of the application. */
  layers: number;
  /** tsgi: `serve()`'s `fastResponse` option; srvx: answer with its `FastResponse` (else the global `Response`). */
  fastResponse: boolean;
  /** raw only: send a Content-Length with every answer. */
  contentLength: boolean;
}

/** A server a server file started on 127.0.0.1 at a free port. */
export interface StartedServer {
  port: number;
  /** The `node:http` server underneath, which server.ts counts requests on. */
  server: Server;
  close(): Promise<void>;
}

/** What every file in servers/ exports. */
export type StartServer = (options: ServerOptions) => Promise<StartedServer>;

export interface Target extends ServerOptions {
  name: string;
  framework: Framework;
}

/** The targets `npm run bench` measures, in the order tables list them. */
export const DEFAULT_TARGETS: readonly string[] = [
  'raw',
  'tsgi-0',
  'tsgi-10',
  'tsgi-10-undici',
  'srvx-0',
  'srvx-10',
  'hono-0',
  'hono-10',
  'h3-0',
  'h3-10',
  'fastify-0',
  'fastify-10',
  'koa-0',
  'koa-10',
  'express-0',
  'express-10',
];

/** The target every ratio is taken against. */
export const BASELINE = 'raw';

/** Thrown for a target name that names no framework or no layer count. */
export class UnknownTargetError extends Error {
  override name = 'UnknownTargetError';
}

/**
 * Reads a target name.
 *
 * @example
 * parseTarget('express-10'); // { name: 'express-10', framework: 'express', layers: 10, … }
 */
export function parseTarget(name: string): Target {
  const base = { name, layers: 0, fastResponse: true, contentLength: false };
  if (name === 'raw') return { ...base, framework: 'raw' };
  if (name === 'raw-length') return { ...base, framework: 'raw', contentLength: true };
  const match = /^([a-z0-9]+)-(\d+)(-undici)?$/.exec(name);
  const framework = FRAMEWORKS.find((candidate) => candidate === match?.[1]);
  if (
    match === null ||
    framework === undefined ||
    framework === 'raw' ||
    (match[3] && framework !== 'tsgi' && framework !== 'srvx')
  ) {
    throw new UnknownTargetError(
      `unknown target "${name}": write <framework>-<layers> with a framework among ${FRAMEWORKS.filter((f) => f !== 'raw').join(', ')} (for example tsgi-10), or raw, raw-length, tsgi-<layers>-undici, srvx-<layers>-undici`,
    );
  }
  return { ...base, framework, layers: Number(match[2]), fastResponse: match[3] === undefined };
}
