/**
 * One request/response exchange with the client, as the Node adapter runs it: it builds the request
 * scope and the `Request` (a lazy {@link NodeRequest}), calls the site's handler, writes the
 * `Response` (write.ts), pumps a streaming body with backpressure, and tells the scope exactly once
 * how the exchange ended:
 * - `completed` once the whole response was handed to the socket (serve()'s {@link ServedResponse}
 *   hears it from Node's `detachSocket()`; a foreign host's response from its `'close'` after
 *   `'finish'`);
 * - `aborted` when the client went away first (the response's `'close'` without `'finish'`, or the
 *   connection's socket closing, which is all that pipelined responses queued behind a slow one get);
 * - `errored` when the body failed midway; the connection is then cut, never ended, so the client
 *   cannot take a truncated body for a complete one.
 *
 * A request whose target and Host header do not make a URL, or whose version or body framing Node
 * took but RFC 9112 does not (connection.ts, framingRefusal), is refused without reaching the
 * application. A client waiting on `Expect: 100-continue` gets it when the application asks for the
 * body (serve() only). A body read past `maxBodySize` makes the answer a 413 whatever the application returned.
 * A response complete while the client is still uploading ends the upload: reads still waiting for it
 * fail, and a lingering close drops the rest (bounded) before the connection goes on or closes, so
 * that an early answer such as that 413 reaches a client that is still sending.
 */
import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { RequestScope } from '../scope.ts';
import type { Outcome } from '../types.ts';
import {
  absoluteUrl,
  type Connection,
  connectionOf,
  framingRefusal,
  linger,
  type OpenExchange,
  originOf,
  PIPELINE_DEPTH,
  shutDown,
  type TrackedSocket,
} from './connection.ts';
import { fixedResponse } from './fast-response.ts';
import { completesOnDetach, holdClose, lookalikeRequests } from './internals.ts';
import { GlobalRequest, NodeRequest, type RequestSource, type Upload } from './request.ts';
import type { Site } from './site.ts';
import { RequestTimeoutError, type TimedExchange } from './timeouts.ts';
import { cut, discard, type StreamHead, textResponse, writeFixed, writeStreamHead } from './write.ts';

/** The pages of framingRefusal()'s statuses (a 505 says which version is spoken: RFC 9110 §15.6.6). */
const REFUSALS: Record<number, string> = {
  501: 'Not Implemented',
  505: 'HTTP Version Not Supported: this server speaks HTTP/1.1',
};

/** One request/response exchange with the client. */
export class Exchange implements RequestSource, TimedExchange {
  readonly scope: RequestScope;
  /** True once the scope was told how the exchange ended. */
  over = false;
  /** True once the exchange has its answer: the application's response, an error page, a 503. */
  answered = false;
  /** The site's sweep count when the application was called (the request timeout's clock). */
  startTick = 0;
  /** True once the application was called (an exchange past PIPELINE_DEPTH waits for it). */
  started = false;
  /** The request the application got. */
  private request: Request | undefined = undefined;
  tooLarge = false;
  private currentUpload: Upload | undefined = undefined;
  /** Set for a client waiting on `Expect: 100-continue` (serve.ts): 100 Continue is not sent yet. */
  private continueExpected: boolean;
  /** Set when the response ended before the upload did and the close Node would make was put off. */
  private holdsClose = false;
  /** Set when writing the application's response failed, so the 500 page is tried once. */
  private failedToWrite = false;
  private readonly connection: Connection;
  private origin = '';
  private absoluteUrl: string | undefined = undefined;
  /** Neighbours in the connection's list of open exchanges. */
  previous: OpenExchange | undefined = undefined;
  next: OpenExchange | undefined = undefined;
  /** Resolves the pump's wait for `'drain'` (also when the exchange ends). */
  private wake: (() => void) | undefined;

  constructor(
    readonly site: Site,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    continueExpected = false,
  ) {
    this.continueExpected = continueExpected;
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

  /** The body stream's source, set when the application first asks for the body. */
  get upload(): Upload | undefined {
    return this.currentUpload;
  }

  set upload(upload: Upload | undefined) {
    this.currentUpload = upload;
    if (!this.continueExpected) return;
    this.continueExpected = false;
    // RFC 9110 §10.1.1: the client waits for 100 Continue before it sends the body, so it is sent
    // once the application wants the body, unless the answer is known from the head already (a
    // Content-Length past maxBodySize fails the read at once: the 413 goes out alone) or was given.
    // A final answer without it makes Node close the connection, as the client may never send the body.
    if (this.answered || this.res.headersSent) return;
    if (!(Number(this.req.headers['content-length']) > this.site.maxBodySize)) this.res.writeContinue();
  }

  /** The request's absolute URL, worked out on first use. */
  get url(): string {
    this.absoluteUrl ??= absoluteUrl(this.origin, this.req.url ?? '/')!;
    return this.absoluteUrl;
  }

  run(): void {
    if (this.connection.open > PIPELINE_DEPTH) this.connection.hold(this);
    else this.start();
  }

  start(): void {
    if (this.started || this.over) return;
    this.started = true;
    this.startTick = this.site.watchdog?.tick ?? 0;
    const refused = framingRefusal(this.req);
    const origin = refused === 0 ? originOf(this.req, this.connection) : undefined;
    // A target that starts with '/' always makes a URL with a valid origin; any other (absolute
    // form from a proxy, '*') is checked now, so that a bad one is answered 400.
    const target = this.req.url ?? '/';
    if (origin !== undefined && target.charCodeAt(0) !== 47) this.absoluteUrl = absoluteUrl(origin, target);
    if (origin === undefined || (target.charCodeAt(0) !== 47 && this.absoluteUrl === undefined)) {
      this.res.shouldKeepAlive = false;
      this.answered = true;
      this.write(textResponse(refused || 400, REFUSALS[refused] ?? 'Bad Request'));
      return;
    }
    this.origin = origin;
    const lookalike = new NodeRequest(this);
    const request = lookalikeRequests() ? (lookalike as unknown as Request) : toUndici(lookalike);
    this.request = request;
    let result: Response | Promise<Response>;
    try {
      result = this.site.handler(request, this.scope.context);
    } catch (error) {
      this.failed(error);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (response) => this.answer(response),
        (error: unknown) => this.failed(error),
      );
    } else {
      this.answer(result);
    }
  }

  /** The application's response; discarded when the exchange was answered otherwise (a 503). */
  private answer(response: Response): void {
    if (this.answered) {
      discard(response);
      return;
    }
    this.answered = true;
    this.write(response);
  }

  /** The handler threw or rejected (it turns application errors into 500s, so that is unexpected). */
  private failed(error: unknown): void {
    if (this.answered) {
      this.scope.fail(error);
      return;
    }
    this.answered = true;
    this.fail(error);
  }

  /**
   * The request timeout expired before the application answered (timeouts.ts): the layers are told
   * through `context.signal`, the failure is reported as an application's, and the client gets 503.
   */
  timedOut(): void {
    if (this.answered || this.over) return;
    this.answered = true;
    const error = new RequestTimeoutError(this.site.timeoutMs);
    this.scope.abort(error);
    this.site.requestFailed(this.request!, this.scope, error);
    this.write(textResponse(503, 'Service Unavailable'));
  }

  closed(): void {
    this.end(this.res.writableFinished ? 'completed' : 'aborted');
  }

  cutOff(error: unknown, status?: number): void {
    if (status !== undefined && !this.res.headersSent) this.scope.status = status;
    this.end('errored', error);
  }

  get headSent(): boolean {
    return this.res.headersSent;
  }

  /** Tells the scope how the exchange ended (the first call decides). */
  end(outcome: Outcome, error?: unknown): void {
    if (this.over) return;
    this.over = true;
    this.resumeWriting();
    const connection = this.connection;
    connection.remove(this);
    this.scope.end(outcome, error);
    // A response complete before its upload: the rest is for nobody now, and a lingering close reads
    // it so that the client gets the answer (connection.ts).
    const lingering = outcome === 'completed' && (this.holdsClose || !this.req.complete) && this.linger();
    if (this.site.closing && connection.open === 0 && !lingering) shutDown(connection.socket);
  }

  private linger(): boolean {
    if (!this.req.complete) this.upload?.discard();
    // While closing, a connection is not kept for a next request even if its response said so.
    return linger(this.req, this.connection.socket, this.holdsClose || this.site.closing);
  }

  /**
   * The handler failed (it turns application errors into 500s, so that is unexpected), or its
   * response could not be written: answer 500. The failure is recorded on the scope, and the handler
   * that emits request_finished reports it (as 'response'), once.
   */
  private fail(error: unknown): void {
    this.scope.fail(error);
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
    try {
      const head = this.req.method === 'HEAD';
      const fixed = fixedResponse(response);
      if (fixed !== undefined) writeFixed(res, head, fixed, this.scope);
      else {
        const stream = writeStreamHead(res, head, response, this.scope);
        if (stream !== null) {
          void this.pump(stream);
          return;
        }
      }
      if (!this.req.complete) this.holdsClose = holdClose(res);
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

  private async pump(stream: StreamHead): Promise<void> {
    const res = this.res;
    const reader = stream.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (this.over) return;
        stream.send(); // the head goes out with this chunk, if it has not gone alone already
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
      if (!this.req.complete) this.holdsClose = holdClose(res);
    } catch (error) {
      if (this.over) return; // the client left first: the scope cancelled the body
      // Failed before its first chunk, and the head still unsent (write.ts's StreamHead): a 500.
      if (stream.withdraw() && !this.failedToWrite) {
        this.failedToWrite = true;
        this.fail(error);
        return;
      }
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
 * On a Node without that method to override (internals.ts), it listens for `'close'` too.
 */
export class ServedResponse extends ServerResponse {
  exchange: Exchange | undefined = undefined;

  constructor(req: IncomingMessage, options?: object) {
    // @ts-expect-error Node passes (req, options), @types/node declares only req: both are handed on.
    super(req, options);
    if (!completesOnDetach()) this.once('close', closedWithoutDetach);
  }

  override detachSocket(socket: Socket): void {
    super.detachSocket(socket);
    if (completesOnDetach()) this.settle('completed');
  }

  /** Tells the exchange how it ended, once. */
  settle(outcome: Outcome): void {
    const exchange = this.exchange;
    if (exchange === undefined) return;
    this.exchange = undefined;
    exchange.end(outcome);
  }
}

function closedWithoutDetach(this: ServedResponse): void {
  this.settle(this.writableFinished ? 'completed' : 'aborted');
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
