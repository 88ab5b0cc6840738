/**
 * Writing a `Response` to a Node `ServerResponse`: the head (status, reason, headers as a flat list,
 * repeated `Set-Cookie` kept), and for a body of fixed data (a string or bytes that nobody has read,
 * in a FastResponse or an undici one: fast-response.ts's `fixedResponse()`) one `end()` with the
 * body's true `Content-Length`, no stream made. A body that streams is left to the exchange to pump
 * (with backpressure) through a {@link StreamHead}, which sends the head with the first chunk or on
 * its own at the end of the turn; one of known size (a Blob) gets its Content-Length. HEAD, 204, 304
 * and 1xx responses never read their body, they cancel it.
 */
import { Buffer } from 'node:buffer';
import { type ServerResponse, validateHeaderName, validateHeaderValue } from 'node:http';
import { isStaticBody } from '../body.ts';
import type { RequestScope } from '../scope.ts';
import { type FixedResponse, streamLength } from './fast-response.ts';
import { presetContentLength } from './internals.ts';

const TEXT = 'text/plain; charset=utf-8';

/**
 * Writes a response whose body is fixed data or nothing, whole. `head` is true for a HEAD request.
 * The scope learns the status and the body bytes handed to Node.
 */
export function writeFixed(
  res: ServerResponse,
  head: boolean,
  fixed: FixedResponse,
  scope: RequestScope,
): void {
  const { status, body } = fixed;
  const length = body === null ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  const bodyless = head || noBodyStatus(status);
  let lengthHeader: string | undefined;
  // The length we send is the body's, whatever a header said; where it can, Node writes it itself
  // (internals.ts), else it goes in as a header (HEAD, HTTP/1.0).
  if (!noBodyStatus(status) && (body !== null || !bodyless)) {
    if (bodyless || !presetContentLength(res, length)) lengthHeader = String(length);
  }
  let headers: readonly string[];
  const raw = fixed.raw;
  if (raw !== undefined) {
    // The response's own list, which Node only reads; copied only to add a Content-Length.
    headers = lengthHeader === undefined ? raw : [...raw, 'content-length', lengthHeader];
  } else if (fixed.headers === undefined) headers = contentTypeHeaders(fixed.contentType, lengthHeader);
  else {
    const list = nodeHeaders(fixed.headers, true);
    if (lengthHeader !== undefined) list.push('content-length', lengthHeader);
    headers = list;
  }
  scope.status = status;
  res.writeHead(status, fixed.statusText || undefined, headers as string[]);
  if (bodyless || body === null) {
    res.end();
    return;
  }
  scope.bytesSent = length;
  res.end(body);
}

/**
 * Starts any other response: returns a {@link StreamHead} holding its body through the scope's handle
 * for the caller to pump; null when there is nothing to pump (no body, or HEAD/204/304, whose body is
 * cancelled unread), and the response is then already ended. Throws when the body cannot be sent (it
 * was read, in part or whole, or is locked): nothing was written, and the caller can still answer 500.
 */
export function writeStreamHead(
  res: ServerResponse,
  head: boolean,
  response: Response,
  scope: RequestScope,
): StreamHead | null {
  const status = response.status;
  const body = response.body;
  const bodyless = head || noBodyStatus(status);
  if (bodyless || body === null) {
    const headers = nodeHeaders(response.headers, false);
    if (body === null && !bodyless && !response.headers.has('content-length')) {
      headers.push('content-length', '0');
    }
    if (bodyless && body !== null) discard(response);
    scope.status = status;
    res.writeHead(status, response.statusText || undefined, headers);
    res.end();
    return null;
  }
  if (response.bodyUsed) {
    throw new TypeError(
      'tsgi: this response body was already read (in part or whole), so it cannot be sent; return a new Response instead',
    );
  }
  const length = streamLength(response);
  const headers = nodeHeaders(response.headers, length >= 0);
  // Node's own checks, now: the head is written later, where a header Node refuses could no longer
  // be answered with a 500 (a WHATWG Headers takes control characters that Node does not).
  for (let i = 0; i < headers.length; i += 2) {
    validateHeaderName(headers[i]!);
    validateHeaderValue(headers[i]!, headers[i + 1]!);
  }
  if (length >= 0) {
    headers.push('content-length', String(length));
    // Node then refuses to send more or fewer bytes than that, rather than break the framing.
    res.strictContentLength = true;
  }
  return new StreamHead(res, status, response.statusText, headers, scope.own(body, noop), scope);
}

/**
 * The head of a response whose body is pumped: sent with the first chunk when that is ready within
 * the current turn of the event loop, else on its own when the turn is over (a `setImmediate`).
 *
 * Node's `writeHead()` only stores a head, which leaves with the first body write: a server-sent
 * events or long-poll response whose first event comes late would leave the client without even a
 * status. Sending the head alone at once would cost a second write for the common stream whose first
 * chunk is ready at once, hence the turn's grace.
 *
 * Until the head is written nothing is committed: a body that fails before its first chunk, within
 * that turn, is answered 500 like any failure before the head (the way a WSGI server sends nothing
 * before the first chunk). Once the head is out, a failing body can only be signalled by cutting
 * the connection ({@link cut}): the client knows the body is not whole, not why, and it has the
 * status the application chose. A body whose first chunk takes longer than a turn to fail is in
 * that second case.
 */
export class StreamHead {
  /** True once the head was written, or given up for another answer. */
  private done = false;
  private readonly timer: NodeJS.Immediate;

  constructor(
    private readonly res: ServerResponse,
    private readonly status: number,
    private readonly statusText: string,
    private readonly headers: string[],
    /** The body, held through the scope's handle. */
    readonly body: ReadableStream<Uint8Array>,
    private readonly scope: RequestScope,
  ) {
    this.timer = setImmediate(sendAlone, this);
  }

  /**
   * Writes the head, to go out with the write that follows; nothing once it was written. When Node
   * refuses it (it throws), the head stays unwritten, and {@link withdraw} says so.
   */
  send(): void {
    if (this.done) return;
    this.res.writeHead(this.status, this.statusText || undefined, this.headers);
    this.done = true;
    clearImmediate(this.timer);
    this.scope.status = this.status;
  }

  /** Gives up the head if it was not written yet, to answer otherwise: true when it was not. */
  withdraw(): boolean {
    if (this.done) return false;
    this.done = true;
    clearImmediate(this.timer);
    return true;
  }

  /** The turn is over and no chunk came: the head goes out alone, unless the exchange is over. */
  flush(): void {
    const res = this.res;
    if (this.done || res.destroyed || this.scope.isClosing) return;
    try {
      res.writeHead(this.status, this.statusText || undefined, this.headers);
    } catch {
      // A head Node refuses though it was checked when made: left unwritten, so that the pump's
      // send() meets the same refusal and answers 500.
      return;
    }
    this.done = true;
    this.scope.status = this.status;
    res.flushHeaders();
  }
}

function sendAlone(head: StreamHead): void {
  head.flush();
}

/**
 * Cuts the connection under a response that cannot be completed: end() would make a truncated body
 * look complete. What was already written goes out first (Node corks the socket until the next tick).
 */
export function cut(res: ServerResponse): void {
  const socket = res.socket;
  if (socket !== null) while (socket.writableCorked > 0) socket.uncork();
  res.destroy();
}

/** A status whose response never has a body, nor a Content-Length (1xx, 204, 304). */
export function noBodyStatus(status: number): boolean {
  return status === 204 || status === 304 || status < 200;
}

/** Cancels a body nobody will read, unless it is fixed data or already taken. */
export function discard(response: Response): void {
  if (isStaticBody(response)) return;
  const body = response.body;
  if (body !== null && !body.locked) body.cancel().catch(noop);
}

export function textResponse(status: number, text: string): Response {
  return new Response(`${text}\n`, { status, headers: { 'content-type': TEXT } });
}

/**
 * `headers` as the flat `[name, value, name, value…]` list `writeHead()` takes (Node reads it without
 * the own-property walk an object needs), repeated `Set-Cookie` headers kept; without any
 * Content-Length when `dropLength` is set (the writer sends the body's own).
 */
export function nodeHeaders(headers: Headers, dropLength: boolean): string[] {
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
export function contentTypeHeaders(
  contentType: string | undefined,
  length: string | undefined,
): readonly string[] {
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

export function noop(): void {}
