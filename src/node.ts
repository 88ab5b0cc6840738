/**
 * The Node server adapter: `serve(app, options)` runs a tsgi application on `node:http`, and
 * `toNodeListener(app)` gives the same machinery as a `(req, res)` listener for Express, Connect or a
 * `node:http` server of your own.
 *
 * The adapter only translates. For each request it creates the request scope, builds the `Request`
 * (a lazy {@link NodeRequest}), calls the application, writes the `Response`, and closes the scope
 * exactly when the exchange with the client is over:
 * - `completed` once the whole response was handed to the socket (the response's `'finish'`);
 * - `aborted` when the client went away first: the response's `'close'` without `'finish'`, or the
 *   socket's `'close'` for pipelined responses queued behind a slow one (Node tells them nothing);
 * - `errored` when the body failed midway; the connection is then cut, never ended, so the client
 *   cannot take a truncated body for a complete one.
 *
 * Writing: a body of fixed data (a string or bytes in a tsgi `FastResponse`, see fast-response.ts)
 * goes out in one `end()` with a `Content-Length` and no stream is ever made; any other body is
 * pumped one chunk at a time, waiting for `'drain'` whenever the socket is full, so a slow client
 * holds the source back. HEAD, 204, 304 and 1xx responses never read their body; they cancel it.
 * Every header is written as given, repeated `Set-Cookie` headers included.
 *
 * Speed: while a server runs tsgi, the global `Response` is tsgi's `FastResponse`, and requests are
 * `NodeRequest`s; both become real undici objects only when something needs more than their plain
 * fields. `serve()` swaps the global when it starts listening; `toNodeListener()` when its host server
 * sends it a first connection. Each puts the original back when that server closes (the last one to
 * close, if several run). An undici `Response` made from a string or bytes (made before the swap,
 * or by `Response.redirect()`) is written from that data too, without reading its stream.
 *
 * Request bodies: `request.body` reads the socket only when the application reads it. Past
 * `maxBodySize` bytes the read fails with {@link PayloadTooLargeError}, and the server answers 413
 * (whatever the application returned) and closes the connection afterwards.
 *
 * A request whose target and Host header do not make a URL is answered 400 by the adapter, as Node
 * answers malformed requests, without reaching the application (no signals: it was never accepted).
 */
import { Buffer } from 'node:buffer';
import { createServer, type IncomingMessage, type Server, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { isStaticBody, staticSource } from './body.ts';
import { type FixedResponse, fixedResponse, useFastResponse } from './fast-response.ts';
import { createHandler, isHandler } from './handler.ts';
import {
  GlobalRequest,
  lookalikeRequests,
  NodeRequest,
  PayloadTooLargeError,
  type RequestSource,
} from './node-request.ts';
import { RequestScope, type ScopeOptions } from './scope.ts';
import type { Application, Handler, Outcome } from './types.ts';

export { PayloadTooLargeError };

/**
 * Options shared by {@link serve} and {@link toNodeListener}.
 *
 * @example
 * const listener = toNodeListener(handler, { maxBodySize: 10 * 1024 * 1024, gracePeriodMs: 2000 });
 */
export interface ListenerOptions {
  /** Largest request body the application may read, in bytes; past it the server answers 413. Default: 1 MiB. */
  maxBodySize?: number;
  /** How long body cancellations and close callbacks may take once a request is over (ms). Default: 1000. */
  gracePeriodMs?: number;
  /** Where request-scope problems are reported. Default: the handler's `signals.onError`. */
  onError?: (error: unknown) => void;
}

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
  /** Time allowed to receive a request's headers (ms). Default: 60 000. */
  headersTimeout?: number;
  /** Time allowed to receive a whole request (ms). Default: 300 000. */
  requestTimeout?: number;
  /** How long an idle keep-alive connection stays open (ms). Default: 5000. */
  keepAliveTimeout?: number;
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
   * closed. Calling it again returns the same promise.
   */
  close(): Promise<void>;
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

const DEFAULT_MAX_BODY_SIZE = 1024 * 1024;
const TEXT = 'text/plain; charset=utf-8';

/** What one listener (one site) shares between its requests. */
class Site {
  readonly handler: Handler;
  readonly maxBodySize: number;
  readonly scopeOptions: { gracePeriodMs: number; onError: (error: unknown) => void; onFinished: () => void };
  /** Set by `close()`: answers go out with `Connection: close`, and sockets close when their last exchange ends. */
  closing = false;
  /** Exchanges whose scope has not finished yet. */
  open = 0;
  /** Set for toNodeListener(): the server is someone else's. */
  hosted = false;
  /** toNodeListener: the host servers seen, each holding the FastResponse swap until it closes. */
  private hosts: Set<NetServer> | undefined;
  private whenIdle: (() => void) | undefined;

  constructor(app: Application, options: ListenerOptions) {
    if (typeof app !== 'function') {
      throw new TypeError(
        `tsgi: the application must be a function (request, context) => Response, got ${app === null ? 'null' : typeof app}`,
      );
    }
    this.handler = isHandler(app) ? app : createHandler(app);
    this.maxBodySize = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE;
    const bus = this.handler.signals;
    this.scopeOptions = {
      gracePeriodMs: options.gracePeriodMs ?? 1000,
      onError: options.onError ?? ((error: unknown) => bus.onError(error, 'request_scope')),
      onFinished: () => this.scopeFinished(),
    };
  }

  /** Swaps in FastResponse while `server`, a host running this listener, is serving. */
  useFastResponseWhile(server: NetServer | undefined): void {
    if (server === undefined || this.hosts?.has(server)) return;
    this.hosts ??= new Set();
    this.hosts.add(server);
    const release = useFastResponse();
    server.once('close', () => {
      this.hosts?.delete(server);
      release();
    });
  }

  /** Resolves once every exchange's scope has finished. */
  idle(): Promise<void> {
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.whenIdle = resolve;
    });
  }

  scopeFinished(): void {
    if (--this.open === 0 && this.whenIdle !== undefined) {
      const resolve = this.whenIdle;
      this.whenIdle = undefined;
      resolve();
    }
  }
}

const CONNECTION: unique symbol = Symbol('tsgi.connection');

interface TrackedSocket extends Socket {
  [CONNECTION]?: Connection;
}

/** What a site keeps per connection. */
class Connection {
  /** Exchanges whose outcome is not known yet, oldest first (pipelined ones queue up behind). */
  first: Exchange | undefined = undefined;
  last: Exchange | undefined = undefined;
  open = 0;
  /** The request scope options of this connection (the client address is the connection's). */
  readonly scopeOptions: ScopeOptions;
  /** The last Host header seen here, and the origin it made. */
  host: string | undefined = undefined;
  origin: string | undefined = undefined;

  /** The connections of other sites on the same socket (a host can mount several). */
  others: Map<Site, Connection> | undefined = undefined;

  constructor(
    readonly socket: TrackedSocket,
    readonly site: Site,
  ) {
    this.scopeOptions = { remoteAddress: socket.remoteAddress, ...site.scopeOptions };
    socket.once('close', () => this.closed());
    // Node's http server sets `server` on each connection it hands requests from.
    if (site.hosted) site.useFastResponseWhile((socket as { server?: NetServer }).server);
  }

  /**
   * The socket closed: every exchange still open here is over. serve()'s responses tell their exchange
   * only that they completed, and pipelined responses queued behind a slow one get no 'close' of
   * their own, so this is where an aborted exchange learns it.
   */
  private closed(): void {
    while (this.first !== undefined) {
      const exchange = this.first;
      exchange.end(exchange.res.writableFinished ? 'completed' : 'aborted');
    }
  }

  add(exchange: Exchange): void {
    exchange.previous = this.last;
    if (this.last === undefined) this.first = exchange;
    else this.last.next = exchange;
    this.last = exchange;
    this.open++;
  }

  remove(exchange: Exchange): void {
    const { previous, next } = exchange;
    if (previous === undefined) this.first = next;
    else previous.next = next;
    if (next === undefined) this.last = previous;
    else next.previous = previous;
    exchange.previous = undefined;
    exchange.next = undefined;
    this.open--;
  }
}

function connectionOf(socket: TrackedSocket, site: Site): Connection {
  const first = socket[CONNECTION];
  if (first === undefined) {
    const connection = new Connection(socket, site);
    socket[CONNECTION] = connection;
    return connection;
  }
  if (first.site === site) return first;
  first.others ??= new Map();
  let connection = first.others.get(site);
  if (connection === undefined) {
    connection = new Connection(socket, site);
    first.others.set(site, connection);
  }
  return connection;
}

/** One request/response exchange with the client. */
class Exchange implements RequestSource {
  readonly scope: RequestScope;
  /** True once the scope was told how the exchange ended. */
  over = false;
  tooLarge = false;
  /** Set when writing the application's response failed, so the 500 page is tried once. */
  private failedToWrite = false;
  private readonly connection: Connection;
  private origin = '';
  private absoluteUrl: string | undefined = undefined;
  /** Neighbours in the connection's list of open exchanges. */
  previous: Exchange | undefined = undefined;
  next: Exchange | undefined = undefined;
  /** Resolves the pump's wait for `'drain'` (also when the exchange ends). */
  private wake: (() => void) | undefined;

  constructor(
    readonly site: Site,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    const connection = connectionOf(req.socket as TrackedSocket, site);
    this.connection = connection;
    this.scope = new RequestScope(connection.scopeOptions);
    site.open++;
    connection.add(this);
    if (res instanceof ServedResponse) res.exchange = this;
    else res.on('close', () => this.end(res.writableFinished ? 'completed' : 'aborted'));
  }

  get signal(): AbortSignal {
    return this.scope.signal;
  }

  get maxBodySize(): number {
    return this.site.maxBodySize;
  }

  /** The request's absolute URL, worked out on first use. */
  get url(): string {
    this.absoluteUrl ??= absoluteUrl(this.origin, this.req.url ?? '/')!;
    return this.absoluteUrl;
  }

  run(): void {
    const origin = originOf(this.req, this.connection);
    // A target that starts with '/' always makes a URL with a valid origin; any other (absolute
    // form from a proxy, '*') is checked now, so that a bad one is answered 400.
    const target = this.req.url ?? '/';
    if (origin !== undefined && target.charCodeAt(0) !== 47) this.absoluteUrl = absoluteUrl(origin, target);
    if (origin === undefined || (target.charCodeAt(0) !== 47 && this.absoluteUrl === undefined)) {
      this.res.shouldKeepAlive = false;
      this.write(textResponse(400, 'Bad Request'));
      return;
    }
    this.origin = origin;
    const request = new NodeRequest(this);
    let result: Response | Promise<Response>;
    try {
      result = this.site.handler(
        lookalikeRequests ? (request as unknown as Request) : toUndici(request),
        this.scope.context,
      );
    } catch (error) {
      this.fail(error);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (response) => this.write(response),
        (error: unknown) => this.fail(error),
      );
    } else {
      this.write(result);
    }
  }

  /** Tells the scope how the exchange ended (the first call decides). */
  end(outcome: Outcome, error?: unknown): void {
    if (this.over) return;
    this.over = true;
    this.resumeWriting();
    const connection = this.connection;
    connection.remove(this);
    this.scope.end(outcome, error);
    if (this.site.closing && connection.open === 0) shutDown(connection.socket);
  }

  /**
   * The handler failed (it turns application errors into 500s, so that is unexpected), or its
   * response could not be written: answer 500 and report it.
   */
  private fail(error: unknown): void {
    this.scope.fail(error);
    this.site.scopeOptions.onError(error);
    this.write(textResponse(500, 'Internal Server Error'));
  }

  write(response: Response): void {
    const res = this.res;
    if (this.over || res.destroyed) {
      // The client left before the answer was ready. The scope cancels the bodies it tracks; this
      // one may be untracked (the handler's own error page), so release it too.
      discard(response);
      this.end('aborted');
      return;
    }
    if (this.tooLarge) {
      discard(response);
      response = textResponse(413, 'Payload Too Large');
    }
    // While closing, the last exchange on a connection says Connection: close (an earlier one would
    // make Node drop the answers pipelined behind it).
    if (this.tooLarge || (this.site.closing && this.connection.open <= 1)) {
      res.shouldKeepAlive = false;
    }
    if (this.tooLarge) this.req.resume(); // read the rest and drop it, so the client sees the 413
    try {
      const fixed = fixedResponse(response) ?? undiciFixed(response);
      if (fixed !== undefined) this.writeFixed(fixed);
      else this.writeResponse(response);
    } catch (error) {
      // The response cannot be written (a body already read or locked, headers Node refuses…).
      // Before the head went out the client can still get a 500; after it, only a cut connection.
      if (!res.headersSent && !this.failedToWrite) {
        this.failedToWrite = true;
        this.fail(error);
        return;
      }
      this.end('errored', error);
      cut(res);
    }
  }

  private bodyless(status: number): boolean {
    return this.req.method === 'HEAD' || noBodyStatus(status);
  }

  /** A string, bytes or no body (in a FastResponse, or an unread undici one): one `end()`, no stream. */
  private writeFixed(fixed: FixedResponse): void {
    const { status, body } = fixed;
    const res = this.res as InternalResponse;
    const length = body === null ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    const bodyless = this.bodyless(status);
    let lengthHeader: string | undefined;
    if (!noBodyStatus(status) && (body !== null || !bodyless)) {
      // The length we send is the body's, whatever a header said. Node adds it itself from
      // `_contentLength` when it would otherwise frame the body chunked (HTTP/1.1, a body allowed):
      // one string append instead of a header to validate. Elsewhere (HEAD, HTTP/1.0), or on a Node
      // without that field, it goes in as a header.
      if (!bodyless && res.useChunkedEncodingByDefault && res._contentLength === null) {
        res._contentLength = length;
      } else {
        lengthHeader = String(length);
      }
    }
    let headers: readonly string[];
    if (fixed.headers === undefined) headers = contentTypeHeaders(fixed.contentType, lengthHeader);
    else {
      const list = nodeHeaders(fixed.headers, true);
      if (lengthHeader !== undefined) list.push('content-length', lengthHeader);
      headers = list;
    }
    this.scope.status = status;
    res.writeHead(status, fixed.statusText || undefined, headers as string[]);
    if (bodyless || body === null) {
      res.end();
      return;
    }
    this.scope.bytesSent = length;
    res.end(body);
  }

  /** Any other response: the body streams through the scope's handle, with backpressure. */
  private writeResponse(response: Response): void {
    const status = response.status;
    const headers = nodeHeaders(response.headers, false);
    const body = response.body;
    const bodyless = this.bodyless(status);
    if (body === null && !bodyless && !response.headers.has('content-length')) {
      headers.push('content-length', '0');
    }
    if (bodyless && body !== null) discard(response);
    this.scope.status = status;
    if (bodyless || body === null) {
      this.res.writeHead(status, response.statusText || undefined, headers);
      this.res.end();
      return;
    }
    const stream = this.scope.own(body, noop);
    this.res.writeHead(status, response.statusText || undefined, headers);
    void this.pump(stream.getReader());
  }

  private async pump(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const res = this.res;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (this.over) return;
        if (done) break;
        if (!res.write(value)) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            res.once('drain', resolve);
          });
          if (this.over) return;
        }
      }
      res.end();
    } catch (error) {
      if (this.over) return; // the client left first: the scope cancelled the body
      this.end('errored', error);
      cut(res);
    }
  }

  resumeWriting(): void {
    const wake = this.wake;
    if (wake === undefined) return;
    this.wake = undefined;
    this.res.off('drain', wake);
    wake();
  }
}

/**
 * The response class of serve()'s own server. Node calls `detachSocket()` once the whole response has
 * been handed to the socket, so the exchange learns there that it completed, with no listener made
 * per request. An exchange whose connection closes first is ended by the connection, as `aborted`.
 * (Under toNodeListener() the host's responses are plain ones: the exchange listens for `'close'`.)
 */
class ServedResponse extends ServerResponse {
  exchange: Exchange | undefined = undefined;

  override detachSocket(socket: Socket): void {
    super.detachSocket(socket);
    const exchange = this.exchange;
    if (exchange === undefined) return;
    this.exchange = undefined;
    exchange.end('completed');
  }
}

/**
 * Cuts the connection under a response that cannot be completed: end() would make a truncated body
 * look complete. What was already written goes out first (Node corks the socket until the next tick).
 */
function cut(res: ServerResponse): void {
  const socket = res.socket;
  if (socket !== null) while (socket.writableCorked > 0) socket.uncork();
  res.destroy();
}

/** Closes a connection that has nothing in flight: at once if nothing is left to flush. */
function shutDown(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableLength === 0) socket.destroy();
  else socket.end();
}

/** An undici response made from a string or bytes, unread, as the parts writeFixed() takes. */
function undiciFixed(response: Response): FixedResponse | undefined {
  const body = staticSource(response);
  if (body === undefined) return undefined;
  return {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
    contentType: undefined,
    body: body as Uint8Array<ArrayBuffer> | string,
  };
}

/** A status whose response never has a body, nor a Content-Length (1xx, 204, 304). */
function noBodyStatus(status: number): boolean {
  return status === 204 || status === 304 || status < 200;
}

/** Cancels a body nobody will read, unless it is fixed data or already taken. */
function discard(response: Response): void {
  if (isStaticBody(response)) return;
  const body = response.body;
  if (body !== null && !body.locked) body.cancel().catch(noop);
}

function textResponse(status: number, text: string): Response {
  return new Response(`${text}\n`, { status, headers: { 'content-type': TEXT } });
}

/**
 * `headers` as the flat `[name, value, name, value…]` list `writeHead()` takes (Node reads it without
 * the own-property walk an object needs), repeated `Set-Cookie` headers kept; without any
 * Content-Length when `dropLength` is set (the writer sends the body's own).
 */
function nodeHeaders(headers: Headers, dropLength: boolean): string[] {
  const out: string[] = [];
  let cookies = false;
  headers.forEach((value, name) => {
    if (name === 'set-cookie') cookies = true;
    else if (!(dropLength && name === 'content-length')) out.push(name, value);
  });
  if (cookies) for (const cookie of headers.getSetCookie()) out.push('set-cookie', cookie);
  return out;
}

const NO_HEADERS: readonly string[] = Object.freeze([]);
/** The last content type's header list, shared between responses (Node only reads it). */
let sharedType: string | undefined;
let sharedHeaders: readonly string[] = NO_HEADERS;

/**
 * The headers of a response that only has its body's default content type (and a Content-Length
 * header when `length` is given): the same list for every response of that type.
 */
function contentTypeHeaders(contentType: string | undefined, length: string | undefined): readonly string[] {
  if (length !== undefined) {
    return contentType === undefined
      ? ['content-length', length]
      : ['content-type', contentType, 'content-length', length];
  }
  if (contentType === undefined) return NO_HEADERS;
  if (contentType !== sharedType) {
    sharedType = contentType;
    sharedHeaders = Object.freeze(['content-type', contentType]);
  }
  return sharedHeaders;
}

/** The fields of Node's ServerResponse the writer uses beyond its public API. */
interface InternalResponse extends ServerResponse {
  /** True when Node would frame a body of unknown length chunked (HTTP/1.1). */
  useChunkedEncodingByDefault: boolean;
  /** The body length Node writes as Content-Length when no header gives one; null until set. */
  _contentLength?: number | null;
}

// A request target and Host that the URL parser would return unchanged: the common case, joined
// without parsing. Anything else (dot segments, characters URL escapes, upper case or numeric hosts,
// the default port) goes through `new URL`.
const PLAIN_TARGET = /^\/[\w\-.~!$&()*+,;=:@/?%]*$/;
const PLAIN_HOST = /^(?:[a-z0-9-]+\.)*[a-z][a-z0-9-]*(?::[1-9]\d{0,3})?$/;

/** The origin (`http://host:port`) of a request, or undefined when its Host makes no valid URL. */
function originOf(req: IncomingMessage, connection: Connection): string | undefined {
  const host = req.headers.host;
  if (connection.origin !== undefined && connection.host === host) return connection.origin;
  const socket = connection.socket;
  const scheme = (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  // HTTP/1.0 may leave Host out: name the interface the request came in on.
  const local = socket.localAddress ?? 'localhost';
  const name = host ?? (local.includes(':') ? `[${local}]` : local);
  let origin: string;
  if (PLAIN_HOST.test(name)) origin = `${scheme}://${name}`;
  else {
    try {
      origin = new URL(`${scheme}://${name}`).origin;
    } catch {
      return undefined;
    }
  }
  connection.host = host;
  connection.origin = origin;
  return origin;
}

/** The absolute URL of `target` at `origin`, as the URL parser writes it; undefined if there is none. */
function absoluteUrl(origin: string, target: string): string | undefined {
  if (PLAIN_TARGET.test(target) && !target.includes('/.') && !/%2e/i.test(target)) return origin + target;
  try {
    // Absolute-form targets (from proxies) are URLs already; '*' (OPTIONS *) becomes the origin.
    if (target === '*') return `${origin}/`;
    return new URL(target.startsWith('/') ? origin + target : target).href;
  } catch {
    return undefined;
  }
}

function toUndici(request: NodeRequest): Request {
  const body = request.body;
  return new GlobalRequest(request.url, {
    method: request.method,
    headers: request.headers,
    body,
    signal: request.signal,
    duplex: 'half',
  } as RequestInit);
}

function noop(): void {}

/**
 * Wraps a tsgi application as a `node:http` request listener, with the whole request lifecycle
 * (scope, signals, disconnect detection) intact. A plain application is wrapped in `createHandler()`
 * so its signals fire. From the first connection its host server gives it until that server closes,
 * the global `Response` is tsgi's FastResponse (see the module notes).
 *
 * @example
 * import express from 'express';
 * const site = express();
 * site.use('/api', toNodeListener(createHandler(api, { middleware: [logging()] })));
 * site.listen(8000);
 */
export function toNodeListener(app: Application, options: ListenerOptions = {}): NodeListener {
  const site = new Site(app, options);
  site.hosted = true;
  return listenerFor(site);
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
  const site = new Site(app, options);
  const host = options.host ?? '127.0.0.1';
  const gracefulTimeout = options.gracefulTimeout ?? 30_000;
  const server = createServer(
    {
      headersTimeout: options.headersTimeout ?? 60_000,
      requestTimeout: options.requestTimeout ?? 300_000,
      keepAliveTimeout: options.keepAliveTimeout ?? 5000,
      ServerResponse: ServedResponse,
    },
    listenerFor(site),
  );
  const sockets = new Set<TrackedSocket>();
  server.on('connection', (socket: TrackedSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const release = useFastResponse();
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

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      site.closing = true;
      // Not server.close(): since Node 19 it also calls closeIdleConnections(), which destroys a
      // connection whose response has ended but is still being flushed to a slow client, and the
      // responses pipelined behind it. Idle connections are closed here instead.
      const stopped = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      for (const socket of sockets) if (!socket[CONNECTION]?.open) shutDown(socket);
      const timer = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, gracefulTimeout);
      try {
        await site.idle();
        await stopped;
      } finally {
        clearTimeout(timer);
        release();
      }
    })();
    return closed;
  };
  // Its responses are ServedResponses, a ServerResponse subclass: to users it is a plain http.Server.
  return { port, url, server: server as unknown as Server, close };
}
