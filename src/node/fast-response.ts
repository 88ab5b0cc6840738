/**
 * `FastResponse`: a `Response` that costs what a plain object costs until someone needs more.
 *
 * Node's own `Response` (undici) builds a `ReadableStream` and a header list the moment it is made,
 * even for `new Response('Hello World')`: about 17 µs of CPU, against about 24 µs for a whole request
 * through raw `node:http`. While a server runs tsgi (`serve()`, or the host server of a
 * `toNodeListener()`), the global `Response` is this class instead (see {@link useFastResponse}), and
 * the original comes back when the last such server closes. The Node adapter then writes a string or
 * bytes body straight to the socket, and nothing else is ever built.
 *
 * This module is also where the Node adapter asks whether a body is fixed data to write whole
 * ({@link fixedResponse}) or a stream of known length ({@link streamLength}), for FastResponses and
 * undici's own responses alike (the latter through internals.ts).
 *
 * What stays true (each has a test in test/fast-response.test.ts):
 * - `instanceof Response` holds for these and for undici's own responses (from `fetch()`,
 *   `Response.json()`, or made before the swap), whichever `Response` the check names;
 * - the constructor validates like undici (RangeError for a status outside 200–599, TypeError for a
 *   bad status text, a body with a null-body status, bad headers, a locked stream body); a body it
 *   does not handle itself (Blob, FormData, URLSearchParams, ArrayBuffer, …) is handed to undici at
 *   once, so its semantics are undici's exactly;
 * - `status`, `statusText`, `ok`, `headers` (made on first use, with undici's default content type),
 *   `type`, `url` and `redirected` are plain fields; `body`, `bodyUsed`, `text()`, `json()`,
 *   `arrayBuffer()`, `blob()`, `formData()`, `bytes()` and `clone()` make the undici body on first use
 *   and delegate to it; a stream body is returned as given (`new Response(s).body === s`, as undici);
 * - the statics `Response.error()` and `Response.redirect()` are undici's; `Response.json()` makes a
 *   FastResponse with undici's `application/json` default.
 *
 * Caveat: once a body has been made, a header added afterwards does not change what `blob().type` or
 * `formData()` see (they read the content type as it was when the body was made).
 */
import { Readable } from 'node:stream';
import { STATIC_BODY } from '../body.ts';
import { undiciBodyLength, undiciFixedData, undiciStaticBody } from './internals.ts';

/** The runtime's own `Response`, captured before any swap. */
export const GlobalResponse: typeof Response = globalThis.Response;

const TEXT_TYPE = 'text/plain;charset=UTF-8';
const JSON_TYPE = 'application/json';
// RFC 9110 reason-phrase: HTAB, SP, VCHAR, obs-text.
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;
// A header name (RFC 9110 token) and a value that WHATWG Headers would keep exactly as given (no
// whitespace to trim at either end) and Node would send (no control characters): anything else is
// left to undici's Headers, whose rules then apply exactly.
const TOKEN = /^[!#$%&'*+\-.^_`|~\dA-Za-z]+$/;
const PLAIN_VALUE = /^(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/;

/** What the Node writer needs from a response whose body is fixed data nobody has touched. */
export interface FixedResponse {
  status: number;
  statusText: string;
  /** The headers, or undefined when none were made (then `raw`, or else `contentType`, applies). */
  headers: Headers | undefined;
  /**
   * The headers as given to the constructor, when they were a plain object nobody has read since:
   * a flat `[name, value, …]` list, names in lower case, the body's default content type included.
   */
  raw: readonly string[] | undefined;
  /** The default content type of the body, used when `headers` is undefined. */
  contentType: string | undefined;
  body: string | Uint8Array<ArrayBuffer> | null;
}

let fixedOf: (response: object) => FixedResponse | undefined;
let realOf: (response: FastResponse) => Response;
let lengthOf: (response: object) => number;

// One view, refilled by each call: the writer reads it at once, and a request then allocates nothing
// for it.
const view: FixedResponse = {
  status: 0,
  statusText: '',
  headers: undefined,
  raw: undefined,
  contentType: undefined,
  body: null,
};

/**
 * The parts of `response` to write whole, without reading a stream, when its body is a string, bytes
 * or nothing that nobody has read or locked: a {@link FastResponse}'s own fields, or for undici's
 * `Response` (made before the swap, with `fastResponse: false`, or behind a FastResponse whose body
 * undici holds) the data it was made from, as internals.ts finds it. Otherwise undefined: the body is
 * to be streamed. The object returned is reused by the next call: read it at once.
 *
 * This, {@link streamLength}, and the scope's `fixedBody` oracle (internals.ts's `undiciStaticBody`,
 * given to every scope by site.ts) are the Node adapter's only answers to "is this body fixed data?".
 */
export function fixedResponse(response: Response): FixedResponse | undefined {
  return fixedOf(response);
}

/**
 * The string or bytes `response`'s body is, when it is fixed data nobody has read or locked (a
 * FastResponse's own, or what undici made it from); null when it has no body; undefined when it must
 * be read as a stream. For middleware that transforms such a body whole, as `gzip()` does, without
 * making a stream of it. The bytes may be the response's own: read them, never change them.
 *
 * @example
 * const data = fixedBody(response);
 * if (typeof data === 'string') return new Response(data.toUpperCase(), response);
 */
export function fixedBody(response: Response): string | Uint8Array<ArrayBuffer> | null | undefined {
  const fixed = fixedOf(response);
  return fixed === undefined ? undefined : fixed.body;
}

/**
 * The length of a body to stream whose size is known all the same (a Blob nobody has read), so that
 * it goes out with a Content-Length; -1 when unknown.
 */
export function streamLength(response: Response): number {
  return lengthOf(response);
}

/** The {@link view}, filled. */
function fill(
  status: number,
  statusText: string,
  headers: Headers | undefined,
  raw: readonly string[] | undefined,
  contentType: string | undefined,
  body: string | Uint8Array<ArrayBuffer> | null,
): FixedResponse {
  view.status = status;
  view.statusText = statusText;
  view.headers = headers;
  view.raw = raw;
  view.contentType = contentType;
  view.body = body;
  return view;
}

type FastBody = string | Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null;

export class FastResponse {
  #status: number;
  #statusText: string;
  #headers: Headers | undefined;
  /** The init's headers as a flat list, until someone reads `headers` (see {@link plainHeaders}). */
  #raw: string[] | undefined;
  #contentType: string | undefined;
  #body: FastBody;
  /** undici's response, holding the body once it was made (and everything, for bodies we don't handle). */
  #real: Response | undefined;
  /** True when the body is fixed data (see body.ts); a field, so every response has the same shape. */
  [STATIC_BODY]: boolean;

  constructor(body?: BodyInit | null, init?: ResponseInit) {
    this.#status = 200;
    this.#statusText = '';
    this.#headers = undefined;
    this.#raw = undefined;
    this.#contentType = undefined;
    this.#body = null;
    this.#real = undefined;
    this[STATIC_BODY] = false;

    let headersInit: HeadersInit | undefined;
    let fast = true;
    if (init !== undefined && init !== null) {
      if (typeof init !== 'object') fast = false;
      else {
        const { status, statusText, headers } = init;
        init = { status, statusText, headers }; // read each member once, as WebIDL does
        if (status !== undefined) {
          if (Number.isInteger(status) && status >= 200 && status <= 599) this.#status = status;
          else fast = false;
        }
        if (statusText !== undefined) {
          if (typeof statusText === 'string' && REASON_PHRASE.test(statusText)) this.#statusText = statusText;
          else fast = false;
        }
        headersInit = headers;
      }
    }
    if (fast && body !== undefined && body !== null) {
      // A null body status (101, 103, 204, 205, 304; only the last three pass the check above) with a
      // body is undici's TypeError to throw.
      if (this.#status === 204 || this.#status === 205 || this.#status === 304) fast = false;
      else if (typeof body === 'string') {
        this.#body = body;
        this.#contentType = TEXT_TYPE;
      } else if (body instanceof Uint8Array) {
        this.#body = new Uint8Array(body); // undici copies the bytes too
      } else if (body instanceof ReadableStream && !body.locked && !isDisturbed(body)) {
        this.#body = body;
      } else fast = false;
    }
    if (!fast) {
      // Undici's own rules, errors and body extraction, exactly.
      const real = new GlobalResponse(body, init);
      this.#real = real;
      this.#status = real.status;
      this.#statusText = real.statusText;
      this.#headers = real.headers;
      this[STATIC_BODY] = undiciStaticBody(real);
      return;
    }
    if (headersInit !== undefined) this.#setHeaders(headersInit);
    this[STATIC_BODY] = !(this.#body instanceof ReadableStream);
  }

  /** Takes the init's headers: kept as given when they are plain (no Headers made), else undici's. */
  #setHeaders(init: HeadersInit): void {
    const entries = entriesOf(init);
    if (entries !== undefined) {
      const raw = plainHeaders(entries, this.#contentType);
      if (raw !== undefined) {
        this.#raw = raw;
        return;
      }
      init = pairsOf(entries); // the values as read: an init is read once
    }
    const headers = new Headers(init);
    if (this.#contentType !== undefined && !headers.has('content-type')) {
      headers.set('content-type', this.#contentType);
    }
    this.#headers = headers;
  }

  get type(): ResponseType {
    return 'default';
  }

  get url(): string {
    return '';
  }

  get redirected(): boolean {
    return false;
  }

  get status(): number {
    return this.#status;
  }

  get ok(): boolean {
    return this.#status >= 200 && this.#status <= 299;
  }

  get statusText(): string {
    return this.#statusText;
  }

  get headers(): Headers {
    if (this.#headers === undefined) {
      const headers = new Headers();
      const raw = this.#raw;
      if (raw !== undefined) {
        for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
        this.#raw = undefined; // from now on the Headers are the truth: a layer may change them
      } else if (this.#contentType !== undefined) headers.set('content-type', this.#contentType);
      this.#headers = headers;
    }
    return this.#headers;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#real !== undefined) return this.#real.body;
    const body = this.#body;
    if (body === null || body instanceof ReadableStream) return body;
    return this.#materialize().body;
  }

  get bodyUsed(): boolean {
    if (this.#real !== undefined) return this.#real.bodyUsed;
    const body = this.#body;
    return body instanceof ReadableStream && isDisturbed(body);
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#consume((real) => real.arrayBuffer());
  }

  blob(): Promise<Blob> {
    return this.#consume((real) => real.blob());
  }

  bytes(): Promise<Uint8Array> {
    return this.#consume((real) => (real as unknown as { bytes(): Promise<Uint8Array> }).bytes());
  }

  formData(): Promise<FormData> {
    return this.#consume((real) => real.formData());
  }

  json(): Promise<unknown> {
    return this.#consume((real) => real.json());
  }

  text(): Promise<string> {
    return this.#consume((real) => real.text());
  }

  clone(): Response {
    if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.');
    const init = { status: this.#status, statusText: this.#statusText, headers: this.headers };
    const body = this.#body;
    if (this.#real === undefined && !(body instanceof ReadableStream)) {
      return new FastResponse(body, init) as unknown as Response;
    }
    // undici tees the body: this response keeps one branch, the clone gets the other.
    const branch = this.#materialize().clone().body;
    return new FastResponse(branch, init) as unknown as Response;
  }

  /** Makes undici's response for the body (status and headers stay ours). */
  #materialize(): Response {
    this.#real ??= new GlobalResponse(this.#body, { headers: this.headers });
    return this.#real;
  }

  #consume<T>(read: (real: Response) => Promise<T>): Promise<T> {
    try {
      return read(this.#materialize());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  [Symbol.for('nodejs.util.inspect.custom')](
    depth: number,
    options: object,
    inspect: (value: unknown, options: object) => string,
  ): string {
    if (depth < 0) return '[Response]';
    const view = {
      status: this.#status,
      statusText: this.#statusText,
      headers: this.headers,
      body: this.#real === undefined ? this.#body : this.#real.body,
      bodyUsed: this.bodyUsed,
      ok: this.ok,
      redirected: false,
      type: 'default',
      url: '',
    };
    return `Response ${inspect(view, options)}`;
  }

  /** Like undici's `Response.json()`, without building a stream. */
  static json(data: unknown, init?: ResponseInit): Response {
    if (init !== undefined && init !== null && typeof init !== 'object')
      return GlobalResponse.json(data, init);
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError('Value is not JSON serializable');
    const given = init?.headers;
    const response = new FastResponse(text, { status: init?.status, statusText: init?.statusText });
    response.#contentType = JSON_TYPE;
    if (given !== undefined && given !== null) response.#setHeaders(given);
    return response as unknown as Response;
  }

  static {
    realOf = (response) => response.#materialize();
    fixedOf = (response) => {
      if (!(#real in response)) {
        const real = response as Response;
        const data = undiciFixedData(real);
        return data === undefined
          ? undefined
          : fill(real.status, real.statusText, real.headers, undefined, undefined, data);
      }
      const body = response.#body;
      if (body instanceof ReadableStream) return undefined;
      const real = response.#real;
      if (real !== undefined) {
        if (body === null) {
          // undici made this body from data we never saw (a Blob, an ArrayBuffer, form data…).
          const data = undiciFixedData(real);
          if (data === undefined) return undefined;
          return fill(response.#status, response.#statusText, response.headers, undefined, undefined, data);
        }
        // Our own string or bytes, which undici copied when something asked for the body: they are
        // still the body unless that stream was read or taken since (a clone's tee does neither).
        if (real.bodyUsed || real.body?.locked) return undefined;
      }
      return fill(
        response.#status,
        response.#statusText,
        response.#headers,
        response.#raw,
        response.#contentType,
        body,
      );
    };
    lengthOf = (response) => {
      if (!(#real in response)) return undiciBodyLength(response as Response);
      const real = response.#real;
      return real === undefined || response.#body !== null ? -1 : undiciBodyLength(real);
    };
  }
}

// Inherit undici's statics (error, redirect) and make every FastResponse an undici Response by
// prototype, so `instanceof` with the original class and `Object.prototype.toString` agree.
Object.setPrototypeOf(FastResponse, GlobalResponse);
Object.setPrototypeOf(FastResponse.prototype, GlobalResponse.prototype);
Object.defineProperty(FastResponse, 'name', { value: 'Response' });
// `x instanceof Response` holds for undici's responses too (from fetch(), Response.json(), or made
// before the swap); a subclass of the swapped global keeps the ordinary check.
Object.defineProperty(FastResponse, Symbol.hasInstance, {
  value: function hasInstance(this: unknown, value: unknown): boolean {
    if (this !== FastResponse) return Function.prototype[Symbol.hasInstance].call(this, value);
    return value instanceof GlobalResponse;
  },
  configurable: true,
});

// Anything undici's Response has that FastResponse does not define itself (a future method) goes to
// the undici body, so nothing reaches undici's code with a FastResponse as `this`.
for (const key of Object.getOwnPropertyNames(GlobalResponse.prototype)) {
  if (Object.hasOwn(FastResponse.prototype, key)) continue;
  const descriptor = Object.getOwnPropertyDescriptor(GlobalResponse.prototype, key)!;
  const { value, get } = descriptor;
  if (typeof value === 'function') {
    Object.defineProperty(FastResponse.prototype, key, {
      ...descriptor,
      value(this: FastResponse, ...args: unknown[]) {
        return (value as (...a: unknown[]) => unknown).apply(realOf(this), args);
      },
    });
  } else if (get !== undefined) {
    Object.defineProperty(FastResponse.prototype, key, {
      ...descriptor,
      get(this: FastResponse) {
        return get.call(realOf(this));
      },
    });
  }
}

/**
 * The entries of a plain header object (an object literal, no symbol keys) as a flat
 * `[name, value, …]` list, each value read once, as undici reads an init; undefined for any other init.
 */
function entriesOf(init: HeadersInit): unknown[] | undefined {
  if (typeof init !== 'object' || init === null || Object.getPrototypeOf(init) !== Object.prototype) {
    return undefined;
  }
  // A symbol key is undici's TypeError to throw (a record's keys are strings).
  if (Object.getOwnPropertySymbols(init).length > 0) return undefined;
  const record = init as Record<string, unknown>;
  const entries: unknown[] = [];
  for (const name in record) entries.push(name, record[name]);
  return entries;
}

/**
 * `entries` as the list the writer hands to Node (lower-case names, `contentType` added when they set
 * none), or undefined when undici must make the headers: a value that is not a string, a name or
 * value Headers would change or refuse (see {@link TOKEN}, {@link PLAIN_VALUE}), two names that differ
 * only in case (Headers joins them), `content-length` or `set-cookie`.
 *
 * This is what `new Response(text, { headers: { 'content-type': 'text/plain' } })` costs instead of a
 * `Headers` (over a microsecond): a `Headers` is made from the list only if someone reads
 * `response.headers`.
 */
function plainHeaders(entries: unknown[], contentType: string | undefined): string[] | undefined {
  const list: string[] = [];
  let typed = false;
  for (let i = 0; i < entries.length; i += 2) {
    const name = entries[i] as string;
    const value = entries[i + 1];
    if (typeof value !== 'string' || !TOKEN.test(name) || !PLAIN_VALUE.test(value)) return undefined;
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'set-cookie') return undefined;
    for (let j = 0; j < list.length; j += 2) if (list[j] === lower) return undefined;
    if (lower === 'content-type') typed = true;
    list.push(lower, value);
  }
  if (!typed && contentType !== undefined) list.push('content-type', contentType);
  return list;
}

/** A flat entry list as the pairs `new Headers()` takes. */
function pairsOf(entries: unknown[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < entries.length; i += 2) pairs.push([entries[i] as string, entries[i + 1] as string]);
  return pairs;
}

/** True once a stream was read from or cancelled (Node's check accepts web streams too). */
export function isDisturbed(stream: ReadableStream): boolean {
  return Readable.isDisturbed(stream as never);
}

let leases = 0;

/**
 * Makes the global `Response` a {@link FastResponse} until the returned function is called (each
 * caller gets its own release; the original comes back when the last one releases).
 */
export function useFastResponse(): () => void {
  if (leases++ === 0 && globalThis.Response === GlobalResponse) {
    globalThis.Response = FastResponse as unknown as typeof Response;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--leases === 0 && (globalThis.Response as unknown) === FastResponse) {
      globalThis.Response = GlobalResponse;
    }
  };
}
