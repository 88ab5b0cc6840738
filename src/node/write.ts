/**
 * Writing a `Response` to a Node `ServerResponse`: the head (status, reason, headers as a flat list,
 * repeated `Set-Cookie` kept), and for a body of fixed data (a string or bytes in a FastResponse, or an
 * unread undici one) one `end()` with the body's true `Content-Length`, no stream made. A body that
 * streams is left to the exchange to pump (with backpressure); HEAD, 204, 304 and 1xx responses never
 * read their body, they cancel it.
 */
import { Buffer } from 'node:buffer';
import type { ServerResponse } from 'node:http';
import { isStaticBody, staticSource } from '../body.ts';
import type { RequestScope } from '../scope.ts';
import type { FixedResponse } from './fast-response.ts';

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
  const internal = res as InternalResponse;
  const length = body === null ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  const bodyless = head || noBodyStatus(status);
  let lengthHeader: string | undefined;
  if (!noBodyStatus(status) && (body !== null || !bodyless)) {
    // The length we send is the body's, whatever a header said. Node adds it itself from
    // `_contentLength` when it would otherwise frame the body chunked (HTTP/1.1, a body allowed):
    // one string append instead of a header to validate. Elsewhere (HEAD, HTTP/1.0), or on a Node
    // without that field, it goes in as a header.
    if (!bodyless && internal.useChunkedEncodingByDefault && internal._contentLength === null) {
      internal._contentLength = length;
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
 * Writes the head of any other response and returns its body, held through the scope's handle, for
 * the caller to pump; null when there is nothing to pump (no body, or HEAD/204/304, whose body is
 * cancelled unread) and the response is already ended.
 */
export function writeStreamHead(
  res: ServerResponse,
  head: boolean,
  response: Response,
  scope: RequestScope,
): ReadableStream<Uint8Array> | null {
  const status = response.status;
  const headers = nodeHeaders(response.headers, false);
  const body = response.body;
  const bodyless = head || noBodyStatus(status);
  if (body === null && !bodyless && !response.headers.has('content-length')) {
    headers.push('content-length', '0');
  }
  if (bodyless && body !== null) discard(response);
  scope.status = status;
  if (bodyless || body === null) {
    res.writeHead(status, response.statusText || undefined, headers);
    res.end();
    return null;
  }
  const stream = scope.own(body, noop);
  res.writeHead(status, response.statusText || undefined, headers);
  return stream;
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

/** An undici response made from a string or bytes, unread, as the parts writeFixed() takes. */
export function undiciFixed(response: Response): FixedResponse | undefined {
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

/** The fields of Node's ServerResponse the writer uses beyond its public API. */
export interface InternalResponse extends ServerResponse {
  /** True when Node would frame a body of unknown length chunked (HTTP/1.1). */
  useChunkedEncodingByDefault: boolean;
  /** The body length Node writes as Content-Length when no header gives one; null until set. */
  _contentLength?: number | null;
}

export function noop(): void {}
