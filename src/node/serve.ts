/**
 * The Node server adapter: `serve(app, options)` runs a tsgi application on `node:http`, and
 * `toNodeListener(app)` gives the same machinery as a `(req, res)` listener for Express, Connect or a
 * `node:http` server of your own.
 *
 * The adapter only translates, one seam per file: site.ts (what a server shares between requests),
 * connection.ts (a socket's open exchanges, pipelining order, the origin), exchange.ts (one request and
 * its response, and how it ended), write.ts (a Response onto a ServerResponse), request.ts (the lazy
 * `Request`), fast-response.ts (the light `Response`), from-node.ts (Node listeners inside tsgi),
 * timeouts.ts (the request and send timeouts), internals.ts (every reliance on Node's or undici's
 * internals, each probed).
 *
 * Bounds: every request is bounded in time — the request timeout (`timeout`, 30 s) answers 503 for an
 * application that has no response, Node's headers timeout (checked often) cuts a client that never
 * finishes its head, the send timeout a client that stops reading, and a layer still running after
 * the request plus the grace period is reported and left behind. A connection runs at most
 * PIPELINE_DEPTH (16) applications at once, whatever it pipelines; `maxConnections` caps connections.
 *
 * Speed: requests are `NodeRequest`s, and while a `serve()` server runs the global `Response` is
 * tsgi's `FastResponse`; both become real undici objects only when something needs more than their
 * plain fields. `serve()` swaps the global when it starts listening (unless `fastResponse: false`);
 * `toNodeListener()` leaves a foreign host's global alone unless asked (`fastResponse: true`, then
 * from its host server's first connection). Each puts the original back when that server closes (the
 * last one to close, if several run). An undici `Response` made from a string or bytes (made before the swap,
 * or by `Response.redirect()`) is written from that data too, without reading its stream.
 *
 * Request bodies: `request.body` reads the socket only when the application reads it. Past
 * `maxBodySize` bytes the read fails with {@link PayloadTooLargeError}, and the server answers 413
 * (whatever the application returned) and closes the connection afterwards.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';
import type { Application } from '../types.ts';
import { CONNECTION, refuseClient, shutDown, type TrackedSocket } from './connection.ts';
import { Exchange, ServedResponse } from './exchange.ts';
import { useFastResponse } from './fast-response.ts';
import { PayloadTooLargeError, UploadDiscardedError } from './request.ts';
import { type ListenerOptions, milliseconds, Site } from './site.ts';
import { noop } from './write.ts';

export type { ListenerOptions };
export { PayloadTooLargeError, UploadDiscardedError };

/**
 * Options of {@link serve}.
 *
 * @example
 * await serve(handler, { host: '0.0.0.0', port: 8000, keepAliveTimeout: 65_000, gracefulTimeout: 10_000 });
 */
export interface ServeOptions extends ListenerOptions {
  /** Port to listen on; 0 picks a free one. Default: 8000. */
  port?: number;
  /** Interface to listen on. Default: `127.0.0.1`. */
  host?: string;
  /**
   * Time allowed to receive a request's headers (ms), from the connection's start or the end of the
   * previous exchange; a slower client (slow-loris) gets 408 and is cut. Default: 10 000.
   */
  headersTimeout?: number;
  /** Time allowed to receive a whole request, body included (ms). Default: 300 000. */
  requestTimeout?: number;
  /** How long an idle keep-alive connection stays open (ms). Default: 5000. */
  keepAliveTimeout?: number;
  /** Most connections open at once; more are closed as they arrive. 0: no limit. Default: 0. */
  maxConnections?: number;
  /** How long `close()` lets in-flight requests run before it cuts their connections (ms). Default: 30 000. */
  gracefulTimeout?: number;
}

/**
 * A running server, as {@link serve} resolves it.
 *
 * @example
 * const server = await serve(handler, { port: 0 });
 * const response = await fetch(`${server.url}/hello`);
 * await server.close();
 */
export interface RunningServer {
  /** The port listened on (the real one when `port: 0` was asked for). */
  readonly port: number;
  /** The server's base URL, without a trailing slash: `http://127.0.0.1:8000`. */
  readonly url: string;
  /** The underlying `node:http` server. */
  readonly server: Server;
  /**
   * Stops accepting connections, closes idle keep-alive connections at once, lets in-flight requests
   * finish (for at most `gracefulTimeout`, then cuts them), and resolves once every request scope has
   * closed, with how many requests the graceful timeout cut. Calling it again returns the same promise.
   */
  close(): Promise<CloseResult>;
}

/** What {@link RunningServer.close} resolves with. */
export interface CloseResult {
  /** Requests still in flight when the graceful timeout ran out, whose connections were cut (0 for a clean stop). */
  readonly cut: number;
}

/**
 * A `node:http` request listener; `next` is accepted (and unused) so Connect and Express can mount it.
 *
 * @example
 * const listener: NodeListener = toNodeListener(handler);
 * http.createServer(listener).listen(8000);
 */
export type NodeListener = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

/**
 * Wraps a tsgi application as a `node:http` request listener, with the whole request lifecycle
 * (scope, signals, disconnect detection) intact. A plain application is wrapped in `createHandler()`
 * so its signals fire. The global `Response` is left alone unless `options.fastResponse` is true (see
 * {@link ListenerOptions.fastResponse}).
 *
 * @example
 * import express from 'express';
 * const site = express();
 * site.use('/api', toNodeListener(createHandler(api, { middleware: [logging()] })));
 * site.listen(8000);
 */
export function toNodeListener(app: Application, options: ListenerOptions = {}): NodeListener {
  return listenerFor(new Site(app, options, true));
}

function listenerFor(site: Site): NodeListener {
  return function tsgiListener(req, res) {
    new Exchange(site, req, res).run();
  };
}

/**
 * Serves a tsgi application over HTTP/1.1 on `node:http`. A plain application is wrapped in
 * `createHandler()` so its signals fire.
 *
 * @example
 * const server = await serve(createHandler(application), { port: 8000 });
 * console.log(`listening on ${server.url}`);
 * process.on('SIGTERM', () => server.close());
 */
export async function serve(app: Application, options: ServeOptions = {}): Promise<RunningServer> {
  const site = new Site(app, options, false);
  const host = options.host ?? '127.0.0.1';
  const gracefulTimeout = milliseconds(options.gracefulTimeout, 'gracefulTimeout', 30_000);
  const headersTimeout = milliseconds(options.headersTimeout, 'headersTimeout', 10_000);
  const requestTimeout = milliseconds(options.requestTimeout, 'requestTimeout', 300_000);
  const checked = [headersTimeout, requestTimeout].filter((ms) => ms > 0);
  const server = createServer(
    {
      headersTimeout,
      requestTimeout: requestTimeout > 0 && requestTimeout < headersTimeout ? headersTimeout : requestTimeout,
      keepAliveTimeout: milliseconds(options.keepAliveTimeout, 'keepAliveTimeout', 5000),
      // Node checks those two every 30 s by default, so a slow-loris client would be cut up to 30 s
      // late: check every quarter of the shorter one (at most every second).
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(Math.min(...checked, 4000) / 4))),
      ServerResponse: ServedResponse,
    },
    listenerFor(site),
  );
  const maxConnections = options.maxConnections ?? 0;
  if (!Number.isInteger(maxConnections) || maxConnections < 0) {
    throw new TypeError(
      `tsgi: the maxConnections option must be an integer ≥ 0 (0: no limit), got ${String(maxConnections)}`,
    );
  }
  if (maxConnections > 0) server.maxConnections = maxConnections;
  // Without a listener Node sends 100 Continue before the application runs, so a client waits for
  // nothing and sends a body that will be refused (413) or never read: the exchange sends it when
  // the application asks for the body.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    new Exchange(site, req, res, true).run();
  });
  server.on('clientError', refuseClient);
  const sockets = new Set<TrackedSocket>();
  server.on('connection', (socket: TrackedSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const release = site.fastResponse ? useFastResponse() : noop;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 8000, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    release();
    throw error;
  }
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 8000);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closed: Promise<CloseResult> | undefined;
  const close = (): Promise<CloseResult> => {
    closed ??= (async () => {
      let cut = 0;
      site.closing = true;
      // Not server.close(): since Node 19 it also calls closeIdleConnections(), which destroys a
      // connection whose response has ended but is still being flushed to a slow client, and the
      // responses pipelined behind it. Idle connections are closed here instead.
      const stopped = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      for (const socket of sockets) if (!socket[CONNECTION]?.open) shutDown(socket);
      const timer = setTimeout(() => {
        for (const socket of sockets) {
          cut += socket[CONNECTION]?.open ?? 0;
          socket.destroy();
        }
      }, gracefulTimeout);
      try {
        await site.idle();
        await stopped;
      } finally {
        clearTimeout(timer);
        site.watchdog?.stop();
        release();
      }
      return { cut };
    })();
    return closed;
  };
  // Its responses are ServedResponses, a ServerResponse subclass: to users it is a plain http.Server.
  return { port, url, server: server as unknown as Server, close };
}
