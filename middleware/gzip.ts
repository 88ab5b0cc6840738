/**
 * `gzip()`: compresses responses for clients that accept it (Rack's Deflater, expressjs/compression,
 * Hono's compress) with `node:zlib`: a body of fixed data in one call, a stream chunk by chunk.
 *
 * It compresses only when it pays, and every case it leaves alone has a reason:
 * - no body, or a status that has none (204, 304), or a partial one (206: the range was cut from the
 *   identity bytes, compressing it would make it unusable);
 * - already encoded (`Content-Encoding` other than `identity`), or `Cache-Control: no-transform`;
 * - not a compressible type (default: text, JSON, JavaScript, XML, SVG, event streams, fonts and
 *   other formats that are not compressed already; `filter(request, response)` replaces that test);
 * - below `threshold` bytes (default 1024): judged from `Content-Length`, or, for a body made from a
 *   string or bytes, from its size; a stream body of unknown length is compressed;
 * - a HEAD request (no body to compress; it still gets `Vary` as the GET would);
 * - the client does not accept gzip: Accept-Encoding is negotiated with q-values, `identity` and `*`
 *   in one pass over at most 16 KiB (accept-encoding.ts has the rules); no header, an unreadable
 *   one or a longer one means identity — never an error.
 *
 * When the response could have been compressed but for the request (HEAD, not accepted), and
 * whenever it is compressed, `Vary: Accept-Encoding` is appended: caches must keep the variants apart
 * (RFC 9110 §12.5.5). A compressed response loses `Content-Length` (a stream) or gets the compressed
 * one (a string or bytes body), and a strong ETag turns weak: the bytes differ, the meaning does not.
 *
 * A body of fixed data (a string or bytes, by tsgi's mark or the host's word) is in memory already:
 * it is taken as it is, without making a stream of it (`fixedBody()` from tsgi/host), compressed
 * in one `zlib.gzip` call on the thread pool, and sent whole with its compressed `Content-Length`.
 * That costs the server about the CPU per request that expressjs/compression spends on the same
 * body (benchmarks/middleware.ts).
 *
 * Streams are pulled: nothing is read from the source before the client asks, then a chunk only when
 * the compressor has room, so a slow client holds the source back. Output goes out as zlib fills its
 * buffer, except for `text/event-stream`, flushed (Z_SYNC_FLUSH) after every chunk so each event
 * reaches the client at once (`CompressionStream` cannot do that). Cancelling the compressed body
 * (the client left) cancels the source body; a failing source fails the compressed body (with an
 * Error: a thrown string or null-prototype object is wrapped, and kept as its `cause`).
 */
import { Buffer } from 'node:buffer';
import { promisify } from 'node:util';
import { constants, createGzip, type Gzip, gzip as gzipBuffer, type ZlibOptions } from 'node:zlib';
import { fixedBody, isStaticBody, scopeOf } from '../src/host.ts';
import type { Middleware, RequestContext } from '../src/index.ts';
import { negotiate } from './accept-encoding.ts';

/** Options of {@link gzip}. */
export interface GzipOptions {
  /** Smallest body worth compressing, in bytes. Default: 1024. */
  threshold?: number;
  /** zlib compression level, 0 (none) to 9 (smallest), or -1 for zlib's default (6). Default: -1. */
  level?: number;
  /**
   * Decides whether a response is worth compressing, replacing the content-type test (the other
   * reasons to leave a response alone still apply). Default: {@link isCompressible}.
   */
  filter?: (request: Request, response: Response) => boolean;
}

// zlib's output is a Buffer over an ArrayBuffer of its own, as a Response body needs.
const compress = promisify(gzipBuffer) as (
  data: string | Uint8Array,
  options: ZlibOptions,
) => Promise<Uint8Array<ArrayBuffer>>;

/**
 * Compresses responses for clients that accept gzip.
 *
 * @example
 * const handler = createHandler(site, { middleware: [logging(), gzip({ threshold: 512 })] });
 * // only JSON, say:
 * gzip({ filter: (request, response) => response.headers.get('content-type') === 'application/json' });
 */
export function gzip(options: GzipOptions = {}): Middleware {
  const threshold = options.threshold ?? 1024;
  const level = options.level ?? constants.Z_DEFAULT_COMPRESSION;
  const filter = options.filter ?? ((_request: Request, response: Response) => isCompressible(response));
  if (typeof threshold !== 'number' || !(threshold >= 0)) {
    throw new TypeError(`gzip({ threshold }): threshold must be a number of bytes ≥ 0, got ${threshold}`);
  }
  if (!Number.isInteger(level) || level < -1 || level > 9) {
    throw new RangeError(`gzip({ level }): level must be an integer from -1 to 9, got ${level}`);
  }
  if (typeof filter !== 'function') {
    throw new TypeError(`gzip({ filter }): filter must be a function, got ${typeof filter}`);
  }

  const zlibOptions: ZlibOptions = { level };

  return function gzipMiddleware(next) {
    return async function gzip(request, context) {
      const response = await next(request, context);
      const status = response.status;
      if (status === 204 || status === 304 || status === 206) return response;
      const headers = response.headers;
      const cacheControl = headers.get('cache-control');
      if (
        !isIdentity(headers.get('content-encoding')) ||
        (cacheControl !== null && NO_TRANSFORM.test(cacheControl)) ||
        Number(headers.get('content-length') ?? Number.POSITIVE_INFINITY) < threshold ||
        !filter(request, response)
      ) {
        return response;
      }
      const isHead = request.method === 'HEAD';
      // The body is looked at last, and a fixed one without making a stream of it: for a lazily built
      // response (a FastResponse), reading `body` is what costs.
      const fixed = isHead ? NOT_FIXED : fixedData(response, context);
      if (fixed === null || (fixed === NOT_FIXED && !isHead && response.body === null)) return response;
      // From here on another Accept-Encoding could have changed the answer.
      if (isHead || negotiate(request.headers.get('accept-encoding')) === 'identity') {
        return varied(response);
      }
      if (fixed !== NOT_FIXED) {
        // In memory already: measured, then compressed in one call on zlib's thread pool, and sent
        // with its compressed length.
        const data = fixed === UNREAD ? new Uint8Array(await response.arrayBuffer()) : fixed;
        if (byteLength(data, threshold) < threshold) {
          return fixed === UNREAD ? rebuild(response, data, varyHeaders(headers)) : varied(response);
        }
        const compressed = await compress(data, zlibOptions);
        const out = encodedHeaders(headers);
        out.set('content-length', String(compressed.byteLength));
        return rebuild(response, compressed, out);
      }
      const flush = mediaType(headers.get('content-type')) === 'text/event-stream';
      return rebuild(response, gzipStream(response.body!, level, flush), encodedHeaders(headers));
    };
  };
}

const NO_TRANSFORM = /(?:^|,)\s*no-transform\s*(?:,|$)/i;

/** A body that is not fixed data: it streams. */
const NOT_FIXED: unique symbol = Symbol('not fixed');
/** Fixed data that only reading the body gets at (a host's own response type, a Blob). */
const UNREAD: unique symbol = Symbol('unread');

/**
 * The body of `response` when it is fixed data (by tsgi's mark or the host's word: the Node adapter
 * knows undici's responses): the string or bytes themselves when they can be had without a stream,
 * null for no body, {@link UNREAD} when only reading it tells; else {@link NOT_FIXED}.
 */
function fixedData(
  response: Response,
  context: RequestContext,
): string | Uint8Array<ArrayBuffer> | null | typeof UNREAD | typeof NOT_FIXED {
  if (!(scopeOf(context)?.hasFixedBody(response) ?? isStaticBody(response))) return NOT_FIXED;
  return fixedBody(response) ?? (response.body === null ? null : UNREAD);
}

/** The UTF-8 size of `data`, or of a string of at least `threshold` units, a lower bound as good. */
function byteLength(data: string | Uint8Array<ArrayBuffer>, threshold: number): number {
  if (typeof data !== 'string') return data.byteLength;
  // Every UTF-16 unit is at least one UTF-8 byte: a long string needs no counting.
  return data.length >= threshold ? data.length : Buffer.byteLength(data);
}

/**
 * The default `filter`: true when the response's media type is worth compressing (text, JSON,
 * JavaScript, XML and SVG, event streams, WebAssembly, uncompressed fonts and icons). A response
 * without a Content-Type is not: its bytes could be anything.
 *
 * @example
 * gzip({ filter: (request, response) => isCompressible(response) || response.headers.has('x-compress') });
 */
export function isCompressible(response: Response): boolean {
  const type = mediaType(response.headers.get('content-type'));
  return type !== '' && COMPRESSIBLE.test(type);
}

const COMPRESSIBLE =
  /^(?:text\/|application\/(?:json|javascript|x-javascript|ecmascript|xml|x-ndjson|wasm|graphql|x-www-form-urlencoded|vnd\.ms-fontobject|x-font-ttf)$|image\/(?:bmp|x-icon|vnd\.microsoft\.icon)$|font\/(?:ttf|otf)$|[^/]+\/[^;]+\+(?:json|xml|text)$)/;

function mediaType(contentType: string | null): string {
  if (contentType === null) return '';
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

function isIdentity(contentEncoding: string | null): boolean {
  return contentEncoding === null || contentEncoding.trim().toLowerCase() === 'identity';
}

/** The response with `Vary: Accept-Encoding` added, in place when its headers allow it. */
function varied(response: Response): Response {
  try {
    addVary(response.headers);
    return response;
  } catch {
    // Immutable headers (a fetch() response passed through): copy them onto a new response.
    return rebuild(response, response.body, varyHeaders(response.headers));
  }
}

function varyHeaders(headers: Headers): Headers {
  const copy = new Headers(headers);
  addVary(copy);
  return copy;
}

function addVary(headers: Headers): void {
  const vary = headers.get('vary');
  if (vary === null) headers.set('vary', 'Accept-Encoding');
  else if (!/(?:^|,)\s*(?:\*|accept-encoding)\s*(?:,|$)/i.test(vary))
    headers.append('vary', 'Accept-Encoding');
}

function encodedHeaders(headers: Headers): Headers {
  const out = varyHeaders(headers);
  out.set('content-encoding', 'gzip');
  out.delete('content-length');
  const etag = out.get('etag');
  if (etag?.startsWith('"')) out.set('etag', `W/${etag}`);
  return out;
}

function rebuild(response: Response, body: BodyInit | null, headers: Headers): Response {
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

/**
 * `source` gzipped. A pump writes source chunks into zlib only while zlib has room (its `write()`
 * returns true, else it waits for `'drain'`); the returned stream reads zlib's output when its
 * consumer asks. Between them at most zlib's two 16 KiB buffers are held.
 */
function gzipStream(
  source: ReadableStream<Uint8Array>,
  level: number,
  flush: boolean,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  const zlib = createGzip({ level });
  // A failure reaches the reader through `output`; without a listener of its own, a source that
  // fails before anyone reads would be an unhandled 'error' event.
  zlib.on('error', noop);
  const output = zlib[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pumping = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!pumping) {
          pumping = true; // nothing is read from the source until the client asks
          void pump(reader, zlib, flush);
        }
        let result: IteratorResult<Buffer>;
        try {
          result = await output.next();
        } catch (error) {
          reader.cancel(error).catch(noop);
          controller.error(error);
          return;
        }
        if (result.done) controller.close();
        else controller.enqueue(result.value);
      },
      async cancel(reason) {
        zlib.destroy();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

async function pump(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  zlib: Gzip,
  flush: boolean,
): Promise<void> {
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (zlib.destroyed) return;
      if (done) {
        zlib.end();
        return;
      }
      const room = zlib.write(value);
      if (flush) zlib.flush(constants.Z_SYNC_FLUSH);
      if (!room) await drained(zlib);
    }
  } catch (error) {
    // The source failed: the compressed stream fails with it (its reader sees the error).
    zlib.destroy(asError(error));
  }
}

/** Resolves when `zlib` can take more input, or when it was destroyed. */
function drained(zlib: Gzip): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      zlib.off('drain', done);
      zlib.off('close', done);
      resolve();
    };
    zlib.on('drain', done);
    zlib.on('close', done);
  });
}

/**
 * `error` as an Error for zlib's `destroy()`: a thrown string or a null-prototype object (which
 * `String()` cannot convert) is wrapped, the original kept as its `cause`.
 */
function asError(error: unknown): Error {
  if (error instanceof Error) return error;
  let text: string;
  try {
    text = String(error);
  } catch {
    text = Object.prototype.toString.call(error);
  }
  return new Error(`the response body failed with a non-Error value: ${text}`, { cause: error });
}

function noop(): void {}
