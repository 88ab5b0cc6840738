/**
 * Every reliance of the Node adapter on Node's or undici's internals, in one place.
 *
 * Each one is probed when this module loads; where the probe does not find what it expects, the
 * adapter takes a fallback that is correct, only slower. {@link probes} says what each probe found,
 * and test/node/internals.test.ts fails when a Node upgrade changes one, and runs every fallback
 * (forced with {@link forceFallback}) against a real server.
 *
 * - **undici's body state** (`response[Symbol(state)].body`: `source`, `length`, `stream`): the
 *   string, bytes or Blob an undici `Response` was made from, so that it is written without reading
 *   its stream, and so that the scope need not proxy it. What it reads is checked on every use (the
 *   state belongs to the response's current body stream, which nobody has locked or read, and the
 *   source still has the length undici recorded); when in doubt the body is streamed. Fallback: every
 *   undici body is a stream.
 * - **`ServerResponse#_contentLength`** (with `useChunkedEncodingByDefault`): a fixed body's length
 *   handed to Node, which writes its `Content-Length` line itself (no header to validate). Fallback:
 *   a `Content-Length` header.
 * - **`ServerResponse#detachSocket()`**, which Node's server calls once a response is wholly handed
 *   to the socket: serve()'s responses learn there that they completed, without a listener per
 *   request. Only a real exchange can show the call, so the probe at load checks that the method is
 *   there to override, and the test watches the call on a real server. Fallback: a `'close'`
 *   listener per response, as under toNodeListener().
 * - **`socket.server`**, the server Node's http server hands a connection from ({@link hostServerOf}):
 *   which host server a toNodeListener() site runs in, to hold the FastResponse swap while it runs.
 *   Fallback: no host known, no swap.
 *
 * - **`ServerResponse#_last`**, true when Node will close the connection after this response
 *   ({@link holdClose}): cleared so that Node does not close while a lingering close still reads the
 *   rest of an upload (connection.ts). Fallback: Node closes as it would; an early answer to a client
 *   still uploading may then reach it as a reset.
 *
 * - **undici's Request slots**: the symbol-keyed fields undici reads from a request passed to `fetch()`
 *   or `new Request()`, lent to the adapter's NodeRequest ({@link lendRequestMembers}) with every
 *   member of `Request.prototype` it does not define itself; then checked by copying a NodeRequest
 *   with `new Request()`. Fallback: the adapter hands the application undici Requests.
 * - **`OutgoingMessage#useChunkedEncodingByDefault`** ({@link sendUnframed}): turned off on the
 *   ServerResponse that fromNodeListener() gives a Node listener, so its body bytes come out as
 *   written. Fallback: Node frames them chunked and the bridge undoes the chunking.
 */
import { Buffer } from 'node:buffer';
import { Server as HttpServer, type IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, Socket } from 'node:net';

/** What a probe found when this module loaded. */
export interface Probe {
  /** True when the internal is there and does what the adapter relies on; false: the fallback is used. */
  readonly found: boolean;
  /** What was looked for and what was seen (for a bug report). */
  readonly detail: string;
}

/** The internals the adapter can use, by name. */
export type Internal =
  | 'undiciBody'
  | 'contentLength'
  | 'detachSocket'
  | 'socketServer'
  | 'lastResponse'
  | 'requestSlots'
  | 'unframedBody';

// Taken when this module loads: the global may later be swapped for tsgi's FastResponse, and the
// probe must look at undici's own.
const NativeResponse: typeof Response = globalThis.Response;

/** The part of undici's response state read here. */
interface UndiciBody {
  stream?: unknown;
  source?: unknown;
  length?: unknown;
}

/** The key of undici's response state; undefined when the probe did not find it (or it is forced off). */
let stateKey: symbol | undefined;
let contentLengthField = false;
let detachSocketCalled = false;
let socketServer = false;
let lastField = false;
let requestSlots = false;
let requestSlotsProbe: Probe = { found: false, detail: 'request.ts has not lent NodeRequest its members' };
let unframedField = false;

function probeUndiciBody(): Probe {
  try {
    const text = new NativeResponse('probe');
    const bytes = new NativeResponse(new Uint8Array([1, 2, 3]));
    const stream = new NativeResponse(new ReadableStream());
    for (const key of Object.getOwnPropertySymbols(text)) {
      if (key.description !== 'state') continue;
      const of = (response: Response): UndiciBody | undefined =>
        (response as unknown as Record<symbol, { body?: UndiciBody } | undefined>)[key]?.body;
      const t = of(text);
      const b = of(bytes);
      const s = of(stream);
      if (
        t?.source === 'probe' &&
        t.length === 5 &&
        t.stream === text.body &&
        b?.source instanceof Uint8Array &&
        b.source.byteLength === 3 &&
        b.length === 3 &&
        b.stream === bytes.body &&
        s?.source === null &&
        s.stream === stream.body
      ) {
        stateKey = key;
        return { found: true, detail: 'Response[Symbol(state)].body has source, length and stream' };
      }
      return { found: false, detail: `Response[Symbol(state)].body is not { source, length, stream }` };
    }
    return { found: false, detail: 'no Symbol(state) on a Response' };
  } catch (error) {
    return { found: false, detail: `making a Response failed: ${String(error)}` };
  }
}

function probeContentLength(): Probe {
  try {
    const req = { method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} };
    const res = new ServerResponse(req as IncomingMessage) as InternalResponse;
    res.sendDate = false;
    if (res.useChunkedEncodingByDefault !== true || res._contentLength !== null) {
      return {
        found: false,
        detail: 'a new ServerResponse has no useChunkedEncodingByDefault or _contentLength',
      };
    }
    res._contentLength = 7;
    res.writeHead(200, []);
    const head = (res as { _header?: unknown })._header;
    if (
      typeof head === 'string' &&
      /\r\ncontent-length: 7\r\n/i.test(head) &&
      !/transfer-encoding/i.test(head)
    ) {
      contentLengthField = true;
      return { found: true, detail: 'writeHead() writes Content-Length from _contentLength' };
    }
    return { found: false, detail: 'writeHead() ignored _contentLength' };
  } catch (error) {
    return { found: false, detail: `probing ServerResponse failed: ${String(error)}` };
  }
}

function probeDetachSocket(): Probe {
  if (
    Object.hasOwn(ServerResponse.prototype, 'detachSocket') &&
    ServerResponse.prototype.detachSocket.length === 1
  ) {
    detachSocketCalled = true;
    return { found: true, detail: 'ServerResponse.prototype.detachSocket(socket) is there to override' };
  }
  return { found: false, detail: 'ServerResponse.prototype has no detachSocket(socket)' };
}

function probeSocketServer(): Probe {
  const server = new HttpServer();
  const socket = new Socket();
  try {
    server.emit('connection', socket);
    if ((socket as { server?: unknown }).server === server) {
      socketServer = true;
      return { found: true, detail: 'http.Server sets socket.server on each connection' };
    }
    return { found: false, detail: 'http.Server does not set socket.server' };
  } catch (error) {
    return { found: false, detail: `handing http.Server a socket failed: ${String(error)}` };
  } finally {
    socket.destroy();
  }
}

function probeLastResponse(): Probe {
  try {
    const req = { method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} };
    const res = new ServerResponse(req as IncomingMessage) as ServerResponse & { _last?: unknown };
    res.sendDate = false;
    res.shouldKeepAlive = false;
    res.writeHead(200, []);
    if (res._last === true) {
      lastField = true;
      return { found: true, detail: 'a response that closes its connection has _last === true' };
    }
    return {
      found: false,
      detail: `a response that closes its connection has _last === ${String(res._last)}`,
    };
  } catch (error) {
    return { found: false, detail: `probing ServerResponse#_last failed: ${String(error)}` };
  }
}

function probeUnframedBody(): Probe {
  try {
    const req = { method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} };
    const res = new ServerResponse(req as IncomingMessage) as InternalResponse;
    res.sendDate = false;
    if (res.useChunkedEncodingByDefault !== true) {
      return { found: false, detail: 'a new ServerResponse has no useChunkedEncodingByDefault === true' };
    }
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, []);
    const head = (res as { _header?: unknown })._header;
    if (typeof head === 'string' && !/transfer-encoding/i.test(head)) {
      unframedField = true;
      return { found: true, detail: 'useChunkedEncodingByDefault = false stops chunked framing' };
    }
    return { found: false, detail: 'writeHead() framed chunked with useChunkedEncodingByDefault = false' };
  } catch (error) {
    return { found: false, detail: `probing useChunkedEncodingByDefault failed: ${String(error)}` };
  }
}

/**
 * What each probe found when this module loaded (a fallback forced later does not change it).
 *
 * @example
 * if (!probes.undiciBody.found) console.warn(`tsgi: undici responses are streamed (${probes.undiciBody.detail})`);
 */
export const probes: { readonly [name in Internal]: Probe } = Object.freeze({
  undiciBody: probeUndiciBody(),
  contentLength: probeContentLength(),
  detachSocket: probeDetachSocket(),
  socketServer: probeSocketServer(),
  lastResponse: probeLastResponse(),
  unframedBody: probeUnframedBody(),
  // Probed when request.ts lends NodeRequest its members (it imports this module, not the reverse).
  get requestSlots(): Probe {
    return requestSlotsProbe;
  },
});

/**
 * For tests: makes the adapter take the fallback for `internal` as if its probe had failed, until
 * the returned function is called (which puts back what the probe found).
 *
 * @example
 * const restore = forceFallback('undiciBody');
 * try { … } finally { restore(); }
 */
export function forceFallback(internal: Internal): () => void {
  const saved = {
    stateKey,
    contentLengthField,
    detachSocketCalled,
    socketServer,
    lastField,
    requestSlots,
    unframedField,
  };
  if (internal === 'undiciBody') stateKey = undefined;
  else if (internal === 'contentLength') contentLengthField = false;
  else if (internal === 'detachSocket') detachSocketCalled = false;
  else if (internal === 'socketServer') socketServer = false;
  else if (internal === 'lastResponse') lastField = false;
  else if (internal === 'requestSlots') requestSlots = false;
  else unframedField = false;
  return () => {
    if (internal === 'undiciBody') stateKey = saved.stateKey;
    else if (internal === 'contentLength') contentLengthField = saved.contentLengthField;
    else if (internal === 'detachSocket') detachSocketCalled = saved.detachSocketCalled;
    else if (internal === 'socketServer') socketServer = saved.socketServer;
    else if (internal === 'lastResponse') lastField = saved.lastField;
    else if (internal === 'requestSlots') requestSlots = saved.requestSlots;
    else unframedField = saved.unframedField;
  };
}

/**
 * undici's body state of `response`: null when it has no body; undefined when that cannot be told
 * (not an undici response, the probe found nothing, or what it holds is not the response's current
 * body stream).
 */
function undiciBody(response: Response): UndiciBody | null | undefined {
  if (stateKey === undefined) return undefined;
  const state = (response as unknown as Record<symbol, { body?: UndiciBody | null } | undefined>)[stateKey];
  if (typeof state !== 'object' || state === null) return undefined;
  const body = state.body;
  if (body === undefined || body === null) return response.body === null ? null : undefined;
  return body.stream === response.body ? body : undefined;
}

/**
 * True when undici made `response`'s body from fixed data (a string, bytes, a Blob, form data) or it
 * has none: such a body holds nothing that needs releasing. False when it cannot be told.
 */
export function undiciStaticBody(response: Response): boolean {
  const body = undiciBody(response);
  if (body === undefined) return false;
  return body === null || (body.source !== null && body.source !== undefined);
}

/**
 * The string or bytes (a copy) to write for `response`'s body, when undici made it from a string or
 * bytes and nobody has read or locked it since; null when it has no body; otherwise undefined (write
 * the stream).
 *
 * The source is checked against the length undici recorded: reading a `clone()` of a response made
 * from bytes detaches those bytes (undici's stream transfers them), and they would go out empty. The
 * bytes are copied for the same reason: a clone read later would detach them under a write Node has
 * not flushed yet.
 */
export function undiciFixedData(response: Response): string | Uint8Array<ArrayBuffer> | null | undefined {
  const body = undiciBody(response);
  if (body === undefined || body === null) return body;
  if (response.bodyUsed || (body.stream as ReadableStream).locked) return undefined;
  const { source, length } = body;
  if (typeof source === 'string') return Buffer.byteLength(source) === length ? source : undefined;
  if (source instanceof Uint8Array && source.byteLength === length) return new Uint8Array(source);
  return undefined;
}

/**
 * The length of `response`'s body when undici made it from a Blob nobody has read or locked since
 * (checked against the Blob's size); otherwise -1. Such a body is streamed with a Content-Length.
 */
export function undiciBodyLength(response: Response): number {
  const body = undiciBody(response);
  if (body === undefined || body === null) return -1;
  if (response.bodyUsed || (body.stream as ReadableStream).locked) return -1;
  const { source, length } = body;
  return source instanceof Blob && source.size === length ? length : -1;
}

/** The fields of Node's ServerResponse used beyond its public API. */
interface InternalResponse extends ServerResponse {
  /** True when Node would frame a body of unknown length chunked (HTTP/1.1). */
  useChunkedEncodingByDefault: boolean;
  /** The body length Node writes as Content-Length when no header gives one; null until set. */
  _contentLength?: number | null;
}

/**
 * Has Node write `Content-Length: length` for `res` itself, before `writeHead()`: one string append
 * instead of a header to validate. True when it will; false when the caller must send the header
 * (HTTP/1.0, where Node frames by closing the connection, a length already set, or a Node without
 * the field).
 */
export function presetContentLength(res: ServerResponse, length: number): boolean {
  if (!contentLengthField) return false;
  const internal = res as InternalResponse;
  if (!internal.useChunkedEncodingByDefault || internal._contentLength !== null) return false;
  internal._contentLength = length;
  return true;
}

/**
 * True when Node calls `detachSocket()` on a response once it is wholly handed to the socket, so that
 * a subclass learns there that it completed; false: listen for `'close'`.
 */
export function completesOnDetach(): boolean {
  return detachSocketCalled;
}

/**
 * The server Node's http server handed `socket` from (the host server of a toNodeListener() site);
 * undefined when it cannot be told.
 *
 * @example
 * site.useFastResponseWhile(hostServerOf(socket));
 */
export function hostServerOf(socket: Socket): NetServer | undefined {
  if (!socketServer) return undefined;
  const server = (socket as { server?: unknown }).server;
  return server instanceof NetServer ? server : undefined;
}

/**
 * Stops Node from closing the connection after `res`, a response that said it would (its
 * `Connection: close` stays in the head): the lingering close closes it once the upload is read.
 * True when Node's close was put off; false when there was none to put off, or the field is unknown.
 */
export function holdClose(res: ServerResponse): boolean {
  if (!lastField) return false;
  const internal = res as ServerResponse & { _last?: unknown };
  if (internal._last !== true) return false;
  internal._last = false;
  return true;
}

/**
 * Has Node write `res`'s body bytes as they are, unframed (fromNodeListener()'s in-memory response:
 * the tsgi server frames the body). True when it will; false when Node frames a body of unknown
 * length chunked, which the caller must then undo.
 */
export function sendUnframed(res: ServerResponse): boolean {
  if (!unframedField) return false;
  (res as InternalResponse).useChunkedEncodingByDefault = false;
  return true;
}

/**
 * Gives `prototype` (NodeRequest's) every member of undici's `Request.prototype` it does not define
 * itself, and the internal slots undici reads from a request handed to `fetch()` or `new Request()`:
 * each is read from, or called on, the undici Request that `realOf` makes on first need. Then checks
 * that undici takes such a request, copying one from `sample()` (a request with a body, URL
 * `http://probe.invalid/path`, method POST and header `x-probe: 1`); {@link lookalikeRequests} says
 * whether it did.
 */
export function lendRequestMembers(
  prototype: object,
  realOf: (self: object) => Request,
  sample: () => Request,
): void {
  const NativeRequest = globalThis.Request;
  try {
    const slotted = new NativeRequest('http://probe.invalid/', {
      method: 'POST',
      body: '',
      duplex: 'half',
    } as RequestInit);
    for (const key of [
      ...Object.getOwnPropertyNames(NativeRequest.prototype),
      ...Object.getOwnPropertySymbols(slotted),
    ]) {
      if (Object.hasOwn(prototype, key)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(NativeRequest.prototype, key);
      const value: unknown = descriptor?.value;
      if (typeof value === 'function') {
        Object.defineProperty(prototype, key, {
          ...descriptor,
          value(this: object, ...args: unknown[]) {
            return (value as (...a: unknown[]) => unknown).apply(realOf(this), args);
          },
        });
      } else {
        Object.defineProperty(prototype, key, {
          get(this: object) {
            return (realOf(this) as unknown as Record<PropertyKey, unknown>)[key];
          },
          configurable: true,
        });
      }
    }
    const copy = new NativeRequest(sample());
    if (
      copy.url === 'http://probe.invalid/path' &&
      copy.method === 'POST' &&
      copy.headers.get('x-probe') === '1'
    ) {
      requestSlots = true;
      requestSlotsProbe = {
        found: true,
        detail: 'new Request(nodeRequest) copies its URL, method and headers',
      };
    } else {
      requestSlotsProbe = {
        found: false,
        detail: `new Request(nodeRequest) gave ${copy.method} ${copy.url} without the header`,
      };
    }
  } catch (error) {
    requestSlotsProbe = { found: false, detail: `new Request(nodeRequest) failed: ${String(error)}` };
  }
}

/**
 * True when undici takes a NodeRequest wherever it takes a Request (`new Request(x)`, and so
 * `fetch(x)`), so the adapter may hand NodeRequests to applications; false: hand out undici Requests.
 */
export function lookalikeRequests(): boolean {
  return requestSlots;
}
