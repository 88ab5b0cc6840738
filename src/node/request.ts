/**
 * `NodeRequest`: the `Request` an application gets from the Node adapter, built from Node's
 * `IncomingMessage` only as far as the application looks.
 *
 * undici's `new Request()` costs 2.5–6 µs (a URL parse, a header list, an AbortSignal that follows
 * another), a large share of a whole raw request. A NodeRequest is one object holding the exchange:
 * `method` and `url` are plain strings, `headers` is made from `rawHeaders` on first use, `signal`
 * is the request scope's (it aborts when the client goes away), and `body` is a stream that reads the
 * socket only when pulled (see {@link requestBody}). `text()`, `json()` and the other body readers
 * read that stream through undici's own body code.
 *
 * It is a `Request` by prototype (`instanceof Request`, `Object.prototype.toString`), and everything
 * else a Request has (`clone()`, `cache`, `mode`, … and the internal slots undici reads when a request
 * is passed to `fetch()` or `new Request()`) comes from an undici Request made on first need from the
 * same URL, method, headers, body stream and signal; from then on every member is that request's.
 * Whether this undici accepts such a request in `fetch()` and `new Request()` is checked once, at
 * load (internals.ts, `lookalikeRequests()`); where it does not, the adapter hands out undici
 * Requests instead.
 */
import type { IncomingMessage } from 'node:http';
import { GlobalResponse, isDisturbed } from './fast-response.ts';
import { lendRequestMembers } from './internals.ts';

/** The runtime's own `Request`. */
export const GlobalRequest: typeof Request = globalThis.Request;

/** What a NodeRequest reads from the exchange that made it. */
export interface RequestSource {
  readonly req: IncomingMessage;
  /** The absolute URL (may be worked out on first use). */
  readonly url: string;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
  /** The largest body the application may read, in bytes. */
  readonly maxBodySize: number;
  /** Set by the body stream when the body passed `maxBodySize`. */
  tooLarge: boolean;
  /** The body stream's source, once the application made one: what the exchange stops when it is over. */
  upload?: Upload | undefined;
}

/**
 * The error a request body read fails with once it passes `maxBodySize`; the server then answers 413
 * whatever the application returns.
 *
 * @example
 * const app: Application = async (request) => {
 *   try {
 *     return Response.json(await request.json());
 *   } catch (error) {
 *     if (error instanceof PayloadTooLargeError) uploadsRefused.inc();
 *     throw error;
 *   }
 * };
 */
export class PayloadTooLargeError extends Error {
  override name = 'PayloadTooLargeError';
  /** The HTTP status the server answers with. */
  readonly status = 413;
  constructor(readonly limit: number) {
    super(`tsgi: the request body is larger than maxBodySize (${limit} bytes); the server answers 413`);
  }
}

/**
 * The error a request body read fails with when the response was complete before the body had
 * arrived: the rest of the upload was read and dropped so that the connection could close cleanly.
 *
 * @example
 * // Read the body before answering; a response sent first ends the upload.
 * const app: Application = async (request) => {
 *   const data = await request.json();
 *   return Response.json(await save(data), { status: 201 });
 * };
 */
export class UploadDiscardedError extends Error {
  override name = 'UploadDiscardedError';
  constructor() {
    super(
      'tsgi: the response was complete before the request body arrived, so the rest of the upload was discarded; read the body before returning the response',
    );
  }
}

const CONSTANTS = {
  cache: 'default',
  credentials: 'same-origin',
  destination: '',
  duplex: 'half',
  integrity: '',
  isHistoryNavigation: false,
  isReloadNavigation: false,
  keepalive: false,
  mode: 'cors',
  redirect: 'follow',
  referrer: 'about:client',
  referrerPolicy: '',
} as const;

type BodyReader = 'arrayBuffer' | 'blob' | 'bytes' | 'formData' | 'json' | 'text';

let realOf: (request: NodeRequest) => Request;

export class NodeRequest {
  #source: RequestSource;
  #headers: Headers | undefined;
  /** undefined until made; null for a request without a body. */
  #body: ReadableStream<Uint8Array> | null | undefined;
  #real: Request | undefined;
  /** True when #real was made after the body was used: its body is a stand-in, ours is still the body. */
  #standIn: boolean;

  constructor(source: RequestSource) {
    this.#source = source;
    this.#headers = undefined;
    this.#body = undefined;
    this.#real = undefined;
    this.#standIn = false;
  }

  get method(): string {
    return this.#source.req.method ?? 'GET';
  }

  get url(): string {
    return this.#source.url;
  }

  get signal(): AbortSignal {
    return this.#source.signal;
  }

  get headers(): Headers {
    if (this.#real !== undefined) return this.#real.headers;
    if (this.#headers === undefined) {
      const headers = new Headers();
      const raw = this.#source.req.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
      this.#headers = headers;
    }
    return this.#headers;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#real !== undefined && !this.#standIn) return this.#real.body;
    return this.#stream();
  }

  get bodyUsed(): boolean {
    if (this.#real !== undefined && !this.#standIn) return this.#real.bodyUsed;
    const body = this.#body;
    return body !== undefined && body !== null && isDisturbed(body);
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#read('arrayBuffer');
  }

  blob(): Promise<Blob> {
    return this.#read('blob');
  }

  bytes(): Promise<Uint8Array> {
    return this.#read('bytes');
  }

  formData(): Promise<FormData> {
    return this.#read('formData');
  }

  json(): Promise<unknown> {
    return this.#read('json');
  }

  text(): Promise<string> {
    return this.#read('text');
  }

  clone(): Request {
    return this.#materialize().clone();
  }

  #stream(): ReadableStream<Uint8Array> | null {
    if (this.#body === undefined) this.#body = requestBody(this.#source);
    return this.#body;
  }

  #read<T>(reader: BodyReader): Promise<T> {
    try {
      if (this.#real !== undefined && !this.#standIn) return (this.#real[reader] as () => Promise<T>)();
      const body = this.#stream();
      if (body !== null && (body.locked || isDisturbed(body))) {
        throw new TypeError('Body is unusable: Body has already been read');
      }
      // undici's body readers, on a response that carries only the body and its content type. The
      // type is the header list's at the time of the call (undici's too): the application may have
      // set it since the request came in.
      const type =
        this.#headers === undefined && this.#real === undefined
          ? this.#source.req.headers['content-type']
          : (this.headers.get('content-type') ?? undefined);
      const carrier = new GlobalResponse(
        body,
        type === undefined ? undefined : { headers: { 'content-type': type } },
      );
      return (carrier[reader] as () => Promise<T>)();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The undici Request this one becomes when something needs more than the members above.
   *
   * undici refuses to make a Request around a body already read or locked, yet a used request must
   * still materialize: `new Request(request, { body })` after the application read `request` reads
   * its slots, and undici itself then lets the new body replace the used one. So such a request gets
   * a stand-in body, put in the same state (read, locked), and the body stays ours.
   */
  #materialize(): Request {
    if (this.#real !== undefined) return this.#real;
    const body = this.#stream();
    const used = body !== null && (body.locked || isDisturbed(body));
    const real = new GlobalRequest(this.url, {
      method: this.method,
      headers: this.headers,
      body: used ? new ReadableStream({ start: (controller) => controller.close() }) : body,
      signal: this.#source.signal,
      duplex: 'half',
    } as RequestInit);
    if (used) {
      this.#standIn = true;
      const reader = real.body!.getReader();
      if (isDisturbed(body)) reader.read().catch(noop);
      if (!body.locked) reader.releaseLock();
    }
    this.#real = real;
    return real;
  }

  static {
    realOf = (request) => request.#materialize();
  }
}

Object.setPrototypeOf(NodeRequest.prototype, GlobalRequest.prototype);
Object.defineProperty(NodeRequest.prototype, 'constructor', {
  value: GlobalRequest,
  writable: true,
  configurable: true,
});
for (const [key, value] of Object.entries(CONSTANTS)) {
  Object.defineProperty(NodeRequest.prototype, key, {
    get() {
      return value;
    },
    configurable: true,
  });
}
// Anything else undici's Request has, and the slots undici reads from a request given to fetch() or
// new Request(), come from the undici Request; internals.ts lends them and checks that undici then
// takes a NodeRequest.
lendRequestMembers(
  NodeRequest.prototype,
  (self) => realOf(self as NodeRequest),
  () => {
    const source = {
      req: { method: 'POST', rawHeaders: ['x-probe', '1'], headers: {} },
      url: 'http://probe.invalid/path',
      signal: new AbortController().signal,
      maxBodySize: 0,
      tooLarge: false,
    } as unknown as RequestSource;
    return new NodeRequest(source) as unknown as Request;
  },
);

/**
 * The request body as a stream that reads the socket only when pulled and fails with
 * {@link PayloadTooLargeError} past `maxBodySize` (at once when `Content-Length` says so). Null for
 * a request without a body (GET and HEAD, or neither `Content-Length` nor `Transfer-Encoding`);
 * with `Content-Length: 0` it is a stream that ends at once, as undici gives for an empty body.
 */
export function requestBody(source: RequestSource): ReadableStream<Uint8Array> | null {
  const req = source.req;
  const method = req.method;
  if (method === 'GET' || method === 'HEAD') return null;
  if (req.headers['transfer-encoding'] === undefined) {
    const length = req.headers['content-length'];
    if (length === undefined) return null;
    if (length === '0') return new ReadableStream({ start: (controller) => controller.close() });
  }
  const upload = new Upload(source);
  source.upload = upload;
  return new ReadableStream<Uint8Array>(upload, { highWaterMark: 0 });
}

/**
 * The source of a request body stream: the IncomingMessage, read on demand. Once it is done (ended,
 * failed, cancelled or discarded) it lets go of the IncomingMessage, so the exchange can drain it.
 */
export class Upload implements UnderlyingDefaultSource<Uint8Array> {
  private received = 0;
  private listening = false;
  private done = false;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined = undefined;
  private waiting: (() => void) | undefined = undefined;

  constructor(private readonly source: RequestSource) {}

  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.controller = controller;
    const length = this.source.req.headers['content-length'];
    if (length !== undefined && Number(length) > this.source.maxBodySize) this.tooLarge();
  }

  async pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const req = this.source.req;
    if (!this.listening && !this.done) {
      this.listening = true;
      req.on('readable', this.wake);
      req.on('end', this.wake);
      req.on('close', this.wake);
    }
    for (;;) {
      if (this.done) return;
      const chunk = req.read() as Buffer | null;
      if (chunk !== null) {
        this.received += chunk.byteLength;
        if (this.received > this.source.maxBodySize) return this.tooLarge();
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        return;
      }
      // Node tears the request down when the socket closes, even when the whole body had arrived
      // first (a fire-and-forget client): such a body is still whole, its bytes read above.
      if (req.readableEnded || (req.destroyed && req.complete)) {
        this.stop();
        return controller.close();
      }
      if (req.destroyed) {
        this.stop();
        return controller.error(req.errored ?? new Error('tsgi: the client went away during the upload'));
      }
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
    }
  }

  cancel(): void {
    // Nobody wants the rest: Node discards it, so the connection stays usable.
    this.stop();
    this.source.req.resume();
  }

  /**
   * The exchange is over before the body arrived: a read still waiting, and any later one, fails with
   * {@link UploadDiscardedError}, and the IncomingMessage is let go so the rest can be dropped.
   */
  discard(): void {
    if (this.done) return;
    this.stop();
    this.controller?.error(new UploadDiscardedError());
  }

  private tooLarge(): void {
    this.source.tooLarge = true;
    this.stop();
    this.controller?.error(new PayloadTooLargeError(this.source.maxBodySize));
  }

  private stop(): void {
    this.done = true;
    if (this.listening) {
      const req = this.source.req;
      req.off('readable', this.wake);
      req.off('end', this.wake);
      req.off('close', this.wake);
    }
    this.wake();
  }

  private readonly wake = (): void => {
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve?.();
  };
}

function noop(): void {}
