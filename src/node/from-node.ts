/**
 * `fromNodeListener(listener)`: mounts an Express or Connect app — any `(req, res) => void` — inside
 * a tsgi site. The reverse of `toNodeListener()`, and like it a pure translation.
 *
 * The listener gets a real `http.IncomingMessage` and a real `http.ServerResponse` (Express swaps
 * their prototypes for its own, so look-alikes would not do), joined by an in-memory socket instead
 * of a TCP one. What the response writes to that socket is read back: the head becomes the status
 * and headers of the tsgi `Response`, the rest streams out as its body. The socket takes one chunk
 * at a time and acknowledges it only when the client asks for it, so `res.write()` returns false and
 * `'drain'` comes late exactly as on a slow connection: a listener that honours backpressure (a
 * pipe, `res.sendFile`) is held back by the real client. The request body is read from the fetch
 * `Request` only as fast as the listener reads `req`.
 *
 * When the client leaves (`context.signal` aborts, or the body is cancelled) the listener sees what a
 * disconnect looks like on Node: `'aborted'` and `'close'` on `req`, `'close'` without `'finish'` on
 * `res`. When the response is over, `res` and `req` emit `'close'` as after a normal exchange.
 *
 * Errors: the listener gets a `next` callback as Connect and Express expect, and the listener fails
 * when it throws, when the promise it returns rejects (a plain `async (req, res) => …` listener), when
 * it calls `next(error)`, or when it destroys the connection.
 * - Before the response started (nothing reached the socket yet), the failure is an exception of the
 *   tsgi application: the returned promise rejects, and the handler answers 500, fires
 *   `got_request_exception` and reports it to `signals.onError` as `'application'`.
 * - After that, the client cannot get a 500 any more. If the listener had not ended its response, the
 *   body errors: the client sees a cut connection, never a truncated body passed off as whole, and
 *   `request_finished` says `errored`. Either way the exception is recorded on the request
 *   (`request_finished`'s `error`) and reported once as `'response'` when the request is over.
 * - `next()` with nothing written is a 404.
 * An Express app that answers an error with its own error handler (its 500 page) has succeeded as far
 * as tsgi can tell: Express reports such errors through its error-handling middleware. Without one,
 * Express passes the error to `next`, and the rules above apply. The promise of an async listener
 * counts as the application still running, so `request_finished` waits for it (guarantee 2), and its
 * rejection is never left unhandled.
 *
 * Caveats: hop-by-hop headers (`Connection`, `Transfer-Encoding`, `Keep-Alive`, `Upgrade`, ..., and
 * every field the listener's `Connection` header names) are dropped, since the tsgi server manages
 * the connection and frames the body itself; `Connection: close` does not close the client's
 * connection. Interim 1xx responses (`writeContinue`, `writeEarlyHints`) and protocol upgrades cannot
 * be carried by a fetch `Response`; `req.socket` timeouts are no-ops, `remoteAddress` comes from the
 * context, and the HTTP version is 1.1.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { scopeOf } from '../scope.ts';
import { signals } from '../signals.ts';
import type { Application, RequestContext } from '../types.ts';
import { sendUnframed } from './internals.ts';

/**
 * A `node:http` request listener: Express and Connect apps are ones (`next` is optional). It may be
 * async (`void` accepts a function returning a promise): a rejection is the listener failing, as a
 * throw is.
 */
export type RequestListener = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

/** The listener answered in a way the tsgi Response cannot carry, or cut its own connection. */
export class NodeListenerError extends Error {
  override name = 'NodeListenerError';
  constructor(
    /** `'status'`: a status outside 200–599; `'destroyed'`: the connection was destroyed mid-response. */
    readonly reason: 'status' | 'destroyed',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Wraps a `node:http` request listener (an Express or Connect app) as a tsgi application.
 *
 * @example
 * import express from 'express';
 * const legacy = express();
 * legacy.get('/users', (req, res) => res.json([]));
 * const site = mount({ '/legacy': fromNodeListener(legacy) }, application); // GET /legacy/users
 */
export function fromNodeListener(listener: RequestListener): Application {
  if (typeof listener !== 'function') {
    throw new TypeError(
      `fromNodeListener(listener): listener must be a (req, res) => void function, like an Express app; got ${listener === null ? 'null' : typeof listener}`,
    );
  }
  return function nodeListener(request, context) {
    return new Exchange(request, context).run(listener);
  };
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'te',
]);
const NULL_BODY = new Set([204, 205, 304]);
const HEAD_END = Buffer.from('\r\n\r\n');

/** One call of the listener: its req, res and socket, and the tsgi Response made from them. */
class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly socket: ExchangeSocket;
  private resolve!: (response: Response) => void;
  private reject!: (error: unknown) => void;
  private readonly response = new Promise<Response>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });
  /** Bytes of the head received so far; undefined once the head was read. */
  private head: Buffer | undefined = Buffer.alloc(0);
  private chunked: ChunkedDecoder | undefined;
  private discardBody = false;
  /** True once the tsgi Response (or an error in its place) was handed back. */
  private responded = false;
  /** The chunk the socket handed us, waiting for the client to ask for it. */
  private pending: { chunk: Buffer; callback: (error?: Error | null) => void } | undefined;
  private wake: (() => void) | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;
  /** True once the exchange is over, one way or another. */
  private over = false;
  /** True while the promise an async listener returned is pending (the request scope waits for it). */
  private running = false;
  /** True once the exchange was broken off: the client left, or a failure cut it. */
  private brokenOff = false;
  private bodyReader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  private bodyDone = false;
  private readonly onAbort = (): void => this.abandon(this.context.signal.reason);

  constructor(
    private readonly request: Request,
    private readonly context: RequestContext,
  ) {
    const url = new URL(request.url);
    this.socket = new ExchangeSocket(this, context?.remoteAddress, url.protocol === 'https:');
    this.req = makeRequest(request, context, url, this.socket as unknown as Socket);
    this.res = new ServerResponse(this.req);
    this.res.sendDate = false; // the tsgi server dates the response
    sendUnframed(this.res); // raw bytes where it can: the tsgi server frames the body
    this.res.assignSocket(this.socket as unknown as Socket);
    // Ending the socket once the response finished lets the last chunks drain before the body ends.
    this.res.once('finish', () => this.socket.end());
    // node:http's server relays the socket's 'drain' to the response; here we are that server.
    this.socket.on('drain', () => {
      if (this.res.writableNeedDrain) this.res.emit('drain');
    });
    const req = this.req;
    if (request.body === null) {
      this.endRequestBody();
    } else {
      // Own `_read`, as `new Readable({ read })` would set it: it survives Express swapping the
      // prototype. The prototype's `_read` still runs first for IncomingMessage's bookkeeping.
      req._read = (size) => {
        IncomingMessage.prototype._read.call(req, size);
        this.readRequestBody();
      };
    }
  }

  run(listener: RequestListener): Promise<Response> {
    const signal = this.context?.signal;
    if (signal?.aborted) {
      this.abandon(signal.reason);
      return this.response;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    let result: unknown;
    try {
      result = listener(this.req, this.res, (error?: unknown) => {
        if (error !== undefined && error !== null) this.fail(error);
        else if (!this.responded && !this.over && !this.res.headersSent) {
          this.settle(notFound());
          this.finish();
        }
      });
    } catch (error) {
      this.fail(error);
      return this.response;
    }
    if (isThenable(result)) this.awaitListener(result);
    return this.response;
  }

  /**
   * An async listener: it counts as running until its promise settles (the request scope waits for
   * it, as for any layer), and a rejection is the listener failing.
   */
  private awaitListener(result: PromiseLike<unknown>): void {
    const scope = scopeOf(this.context);
    scope?.enter();
    this.running = true;
    const done = (): void => {
      this.running = false;
      scope?.leave();
    };
    Promise.resolve(result).then(done, (error: unknown) => {
      try {
        this.fail(error);
      } finally {
        done();
      }
    });
  }

  /** A write reached the socket. */
  received(chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (this.head !== undefined) {
      let head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
      for (;;) {
        const end = head.indexOf(HEAD_END);
        if (end === -1) {
          this.head = head;
          callback();
          return;
        }
        const text = head.toString('latin1', 0, end);
        head = head.subarray(end + HEAD_END.length);
        if (/^HTTP\/1\.[01] 1\d\d/.test(text) && !text.startsWith('HTTP/1.1 101')) continue; // interim
        this.head = undefined;
        try {
          this.respond(text);
        } catch (error) {
          // The head itself cannot be carried: whatever follows it, there is no response to pass on.
          this.refuse(error);
        }
        break;
      }
      chunk = head;
    }
    if (this.chunked !== undefined) chunk = this.chunked.decode(chunk);
    if (this.discardBody || this.over || chunk.length === 0) {
      callback();
      return;
    }
    this.pending = { chunk, callback };
    this.wakeUp();
  }

  /** The response ended and every chunk before the end was taken. */
  socketEnded(): void {
    this.ended = true;
    if (this.discardBody) this.finish();
    else this.wakeUp();
  }

  /** The socket was destroyed: by us when the exchange is over, else by the listener. */
  socketDestroyed(error: Error | null): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.callback(error ?? new Error('tsgi: the connection was closed'));
    if (this.over) return;
    const failure =
      error ??
      new NodeListenerError(
        'destroyed',
        'tsgi: the Node listener destroyed the connection before the response ended',
      );
    if (!this.responded) this.refuse(failure);
    else {
      // What the listener wrote last went down with the socket: the body cannot be completed.
      this.record(failure);
      this.breakOff(failure);
    }
  }

  private respond(text: string): void {
    const lines = text.split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0]!);
    const code = Number(status?.[1]);
    if (!(code >= 200 && code <= 599)) {
      throw new NodeListenerError(
        'status',
        `tsgi: the Node listener answered with status ${status?.[1]}, which a fetch Response cannot carry`,
      );
    }
    const fields: [name: string, lower: string, value: string][] = [];
    // Fields the Connection header names are hop-by-hop too (RFC 9110, 7.6.1).
    let named: Set<string> | undefined;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      const lower = name.toLowerCase();
      if (lower === 'connection') {
        for (const token of value.split(',')) {
          const option = token.trim().toLowerCase();
          if (option === '' || option === 'close' || option === 'keep-alive') continue;
          named ??= new Set();
          named.add(option);
        }
      }
      if (lower === 'transfer-encoding' && /chunked/i.test(value)) this.chunked = new ChunkedDecoder();
      fields.push([name, lower, value]);
    }
    const headers = new Headers();
    for (const [name, lower, value] of fields) {
      if (!HOP_BY_HOP.has(lower) && named?.has(lower) !== true) headers.append(name, value);
    }
    this.discardBody = this.request.method === 'HEAD' || NULL_BODY.has(code);
    const body = this.discardBody ? null : this.body();
    this.settle(new Response(body, { status: code, statusText: status?.[2] ?? '', headers }));
  }

  private settle(response: Response): void {
    this.responded = true;
    this.resolve(response);
  }

  private body(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          for (;;) {
            const pending = this.pending;
            if (pending !== undefined) {
              this.pending = undefined;
              controller.enqueue(pending.chunk);
              pending.callback();
              return;
            }
            if (this.failure !== undefined) {
              controller.error(this.failure.error);
              return;
            }
            if (this.ended) {
              controller.close();
              this.finish();
              return;
            }
            await new Promise<void>((resolve) => {
              this.wake = resolve;
            });
          }
        },
        cancel: (reason) => this.abandon(reason),
      },
      { highWaterMark: 0 },
    );
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /**
   * The listener failed. Before its response started: the application's promise rejects (the handler
   * answers 500). After: the request records the exception, and the body errors unless the listener
   * had already ended its response (then the client gets all of it, and nothing is truncated; Node may
   * still hold those bytes for a tick, so "ended" is asked of `res`, not of what reached us).
   */
  private fail(error: unknown): void {
    // After the client left, or after an earlier failure cut the exchange, what fails is most likely
    // that (req destroyed with ECONNRESET, a write after the close): the request already says how it
    // ended, and reporting each consequence would bury the cause.
    if (this.brokenOff) return;
    const ended = this.res.writableEnded;
    if (!this.responded && !ended) {
      this.refuse(error);
      return;
    }
    this.record(error);
    if (!ended) this.breakOff(error);
  }

  /** No response was handed back: the application's promise rejects with `error`. */
  private refuse(error: unknown): void {
    if (this.responded) return;
    this.responded = true;
    this.reject(error);
    this.breakOff(error);
  }

  /**
   * An exception after the response started: recorded on the request, whose handler reports it when
   * the request is over. Only a late `next(error)` of a callback-style listener can come after the
   * request stopped waiting for us; then (or without a tsgi scope) the process-wide hook is left.
   */
  private record(error: unknown): void {
    const scope = scopeOf(this.context);
    if (scope !== undefined && (this.running || scope.outcome === undefined)) scope.fail(error);
    else signals.report(error, 'response', this.request);
  }

  /** Ends the exchange as failed: the body (if the client is still reading it) errors. */
  private breakOff(error: unknown): void {
    if (this.over) return;
    this.brokenOff = true;
    this.failure = { error };
    this.wakeUp();
    this.close();
  }

  /** The response is over and the client has it: close req and res as after a normal exchange. */
  private finish(): void {
    if (this.over) return;
    this.over = true;
    this.context?.signal?.removeEventListener('abort', this.onAbort);
    this.endRequestBody();
    this.req.removeAllListeners('data');
    this.req.resume();
    this.socket.destroy();
  }

  /** The client went away: the listener sees a disconnect. */
  private abandon(reason: unknown): void {
    if (this.over) return;
    // Nobody reads the answer any more; settle it so the request scope can finish.
    if (!this.responded) this.settle(new Response(null, { status: 503 }));
    this.brokenOff = true;
    this.failure ??= { error: reason };
    this.wakeUp();
    this.close();
  }

  private close(): void {
    this.over = true;
    this.context?.signal?.removeEventListener('abort', this.onAbort);
    this.bodyReader?.cancel().catch(noop);
    this.bodyDone = true;
    this.req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    this.socket.destroy();
  }

  private readRequestBody(): void {
    if (this.bodyDone) return;
    this.bodyReader ??= this.request.body!.getReader();
    this.bodyReader.read().then(
      ({ done, value }) => {
        if (this.bodyDone) return;
        if (done) this.endRequestBody();
        else this.req.push(value);
      },
      (error: unknown) => {
        if (this.bodyDone) return;
        this.bodyDone = true;
        this.req.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /** Ends `req`; a body the listener did not read is cancelled (the tsgi server discards it). */
  private endRequestBody(): void {
    if (this.bodyDone) return;
    this.bodyDone = true;
    const body = this.request.body;
    if (this.bodyReader !== undefined) this.bodyReader.cancel().catch(noop);
    else if (body !== null && !body.locked) body.cancel().catch(noop);
    this.req.complete = true;
    this.req.push(null);
  }
}

/** The in-memory connection between the listener's `res` and the tsgi Response. */
class ExchangeSocket extends Duplex {
  readonly remotePort = undefined;

  constructor(
    private readonly exchange: Exchange,
    readonly remoteAddress: string | undefined,
    readonly encrypted: boolean,
  ) {
    super({ allowHalfOpen: true });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.exchange.received(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.exchange.socketEnded();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.exchange.socketDestroyed(error);
    // Not re-emitted as 'error': nobody listens on this socket as a server would, and the exchange
    // already reports it where it belongs (the body or the application's result).
    callback(null);
  }

  setTimeout(): this {
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }
}

function makeRequest(request: Request, context: RequestContext, url: URL, socket: Socket): IncomingMessage {
  const req = new IncomingMessage(socket);
  req.method = request.method;
  req.url = url.pathname + url.search;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const headers: Record<string, string> = {};
  const raw: string[] = [];
  request.headers.forEach((value, name) => {
    headers[name] = value;
    raw.push(name, value);
  });
  if (headers.host === undefined) {
    headers.host = url.host;
    raw.push('host', url.host);
  }
  // A fetch body of unknown length is what a chunked upload is on Node; body parsers look for one of
  // these two headers to decide that there is a body at all.
  if (
    request.body !== null &&
    headers['content-length'] === undefined &&
    headers['transfer-encoding'] === undefined
  ) {
    headers['transfer-encoding'] = 'chunked';
    raw.push('transfer-encoding', 'chunked');
  }
  req.headers = headers;
  req.rawHeaders = raw;
  // Express keeps the URL it was first given as req.originalUrl (redirects use it): under mount(),
  // that is the URL before the prefix was stripped.
  const original = (context as { originalUrl?: unknown } | undefined)?.originalUrl;
  if (typeof original === 'string') {
    const { pathname, search } = new URL(original);
    Object.assign(req, { originalUrl: pathname + search });
  }
  return req;
}

/**
 * Undoes `Transfer-Encoding: chunked`: for a listener that set that header itself, and for Node's own
 * chunked framing where `sendUnframed()` could not turn it off.
 */
class ChunkedDecoder {
  private rest: Buffer = Buffer.alloc(0);
  /** Data bytes left in the current chunk, then 2 for its CRLF. */
  private left = 0;
  private data = false;
  private done = false;

  decode(input: Buffer): Buffer {
    let buffer = this.rest.length === 0 ? input : Buffer.concat([this.rest, input]);
    this.rest = Buffer.alloc(0);
    const out: Buffer[] = [];
    while (buffer.length > 0 && !this.done) {
      if (this.left > 0) {
        const take = Math.min(this.left, buffer.length);
        if (this.data) out.push(buffer.subarray(0, take));
        buffer = buffer.subarray(take);
        this.left -= take;
        if (this.left === 0 && this.data) {
          this.data = false;
          this.left = 2;
        }
        continue;
      }
      const end = buffer.indexOf('\r\n');
      if (end === -1) {
        this.rest = buffer;
        break;
      }
      const size = Number.parseInt(buffer.toString('latin1', 0, end), 16);
      buffer = buffer.subarray(end + 2);
      if (size > 0) {
        this.left = size;
        this.data = true;
      } else {
        this.done = true; // the last chunk (size 0); trailers after it are dropped
      }
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}

function notFound(): Response {
  return new Response('Not Found\n', {
    status: 404,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
}

function noop(): void {}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
