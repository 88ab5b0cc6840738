/**
 * A connection as a site sees it: the exchanges still open on one socket, oldest first (pipelined
 * requests queue up behind a slow response), the origin its Host header made (and the URL of each
 * request target, or a 400 when Host or target is not one RFC 9112 allows), what happens when the
 * socket closes — every exchange still open there is over, since pipelined responses queued behind a
 * slow one get no 'close' of their own — and how it closes while a client is still uploading (a
 * lingering close, {@link linger}).
 *
 * One socket can carry several sites (a host that mounts two tsgi listeners): each gets its own
 * Connection, found from the socket's first one.
 *
 * The exchanges are known here only as {@link OpenExchange}s, so this module does not depend on the
 * exchange's.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ScopeOptions } from '../scope.ts';
import { holdClose, hostServerOf } from './internals.ts';
import type { Site } from './site.ts';

/** An exchange as its connection keeps it: a link in the list, told when the socket has closed. */
export interface OpenExchange {
  previous: OpenExchange | undefined;
  next: OpenExchange | undefined;
  /** The socket closed: the exchange is over (completed if its response had finished, else aborted). */
  closed(): void;
  /** The connection is being cut for `error`: the exchange is over, errored. */
  cutOff(error: unknown, status?: number): void;
  /** True once the response's head was handed to Node. */
  readonly headSent: boolean;
  /** Runs the application for an exchange that was held back ({@link PIPELINE_DEPTH}). */
  start(): void;
}

/**
 * How many exchanges of one connection run the application at once. Node parses every request of
 * one read before it can pause the socket, so a client that pipelines a thousand requests in one
 * write would have a thousand responses made and held for it, read or not; past this many open
 * exchanges, the next ones wait for the oldest to finish (their request timeout starts when they do).
 */
export const PIPELINE_DEPTH = 16;

export const CONNECTION: unique symbol = Symbol('tsgi.connection');

export interface TrackedSocket extends Socket {
  [CONNECTION]?: Connection;
}

/** What a site keeps per connection. */
export class Connection {
  /** Exchanges whose outcome is not known yet, oldest first (pipelined ones queue up behind). */
  first: OpenExchange | undefined = undefined;
  last: OpenExchange | undefined = undefined;
  open = 0;
  /** The request scope options of this connection (the client address is the connection's). */
  readonly scopeOptions: ScopeOptions;
  /** The last Host header seen here, and the origin it made. */
  host: string | undefined = undefined;
  origin: string | undefined = undefined;

  /** The connections of other sites on the same socket (a host can mount several). */
  others: Map<Site, Connection> | undefined = undefined;
  /** Exchanges held back past {@link PIPELINE_DEPTH}, oldest first. */
  private held: OpenExchange[] | undefined = undefined;
  /** For the send timeout (timeouts.ts): the socket's unsent bytes at the last sweep, and since when. */
  pendingBytes = 0;
  pendingSince = -1;

  constructor(
    readonly socket: TrackedSocket,
    readonly site: Site,
  ) {
    this.scopeOptions = { remoteAddress: socket.remoteAddress, ...site.scopeOptions };
    socket.once('close', () => this.closed());
    // Node's http server sets `server` on each connection it hands requests from.
    if (site.hosted) site.useFastResponseWhile(hostServerOf(socket));
    site.watchdog?.watch(this);
  }

  /**
   * Cuts the connection for `error` (a timeout, a request Node could not parse): every exchange still
   * open here ends errored, the first with `status` when that was what the client got.
   */
  cut(error: unknown, status?: number): void {
    if (this.first !== undefined) this.first.cutOff(error, status);
    while (this.first !== undefined) this.first.cutOff(error);
    this.site.watchdog?.forget(this);
    this.socket.destroy();
  }

  /**
   * The socket closed: every exchange still open here is over. serve()'s responses tell their exchange
   * only that they completed, and pipelined responses queued behind a slow one get no 'close' of
   * their own, so this is where an aborted exchange learns it.
   */
  private closed(): void {
    this.site.watchdog?.forget(this);
    while (this.first !== undefined) this.first.closed();
  }

  add(exchange: OpenExchange): void {
    exchange.previous = this.last;
    if (this.last === undefined) this.first = exchange;
    else this.last.next = exchange;
    this.last = exchange;
    this.open++;
  }

  remove(exchange: OpenExchange): void {
    const { previous, next } = exchange;
    if (previous === undefined) this.first = next;
    else previous.next = next;
    if (next === undefined) this.last = previous;
    else next.previous = previous;
    exchange.previous = undefined;
    exchange.next = undefined;
    this.open--;
    const held = this.held;
    if (held !== undefined && held.length > 0) queueMicrotask(() => held.shift()?.start());
  }

  /** Holds `exchange` back until an older one is over ({@link PIPELINE_DEPTH}). */
  hold(exchange: OpenExchange): void {
    this.held ??= [];
    this.held.push(exchange);
  }
}

export function connectionOf(socket: TrackedSocket, site: Site): Connection {
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

/** Closes a connection that has nothing in flight: at once if nothing is left to flush. */
export function shutDown(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableLength === 0) socket.destroy();
  else socket.end();
}

// A request target and Host that the URL parser would return unchanged: the common case, joined
// without parsing. Anything else (dot segments, characters URL escapes, upper case or numeric hosts,
// punycode labels the URL parser may refuse, ports past 9999 or a default one) goes through
// `new URL`, once per connection for a Host (the origin is kept).
const PLAIN_TARGET = /^\/[\w\-.~!$&()*+,;=:@/?%]*$/;
const PLAIN_HOST = /^(?:(?!xn--)[a-z0-9-]+\.)*(?!xn--)[a-z][a-z0-9-]*(?::[1-9]\d{0,3})?$/;

// RFC 9110 §7.2 and RFC 3986 §3.2.2: Host = uri-host [ ":" port ], a uri-host being an IP literal,
// an IPv4 address or a reg-name (unreserved, sub-delims and %XX). Userinfo, a path, a query,
// whitespace, control characters or an empty port are not a Host, and RFC 9112 §3.2 answers them
// 400; the URL parser would instead trim them off (`a/b` became `a`, `evil@host` became `host`).
const HOST = /^(?:\[[\dA-Fa-f:.]+\]|(?:[\w\-.~!$&'()*+,;=]|%[\dA-Fa-f]{2})+)(?::\d+)?$/;

// RFC 9112 §3.2.2, absolute-form: scheme "://" authority, then the path and query, if any.
const ABSOLUTE_FORM = /^([A-Za-z][A-Za-z\d+.-]*):\/\/([^/?#]*)([/?].*)?$/s;

/**
 * The origin (`http://host:port`) of a request, from its Host header; undefined when the request
 * must be answered 400: a Host that is not `uri-host [":" port]`, or more than one Host line
 * (RFC 9112 §3.2). The scheme is the socket's (https over TLS), never the client's word.
 */
export function originOf(req: IncomingMessage, connection: Connection): string | undefined {
  const host = req.headers.host;
  if (host !== undefined && hostRepeated(req.rawHeaders)) return undefined;
  if (connection.origin !== undefined && connection.host === host) return connection.origin;
  const socket = connection.socket;
  const scheme = (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  let origin: string | undefined;
  if (host !== undefined) origin = hostOrigin(scheme, host);
  else {
    // HTTP/1.0 may leave Host out (Node answers an HTTP/1.1 request without one 400 itself): name
    // the interface and port the request came in on.
    const local = socket.localAddress ?? '127.0.0.1';
    const name = local.includes(':') ? `[${local}]` : local;
    origin = hostOrigin(scheme, socket.localPort === undefined ? name : `${name}:${socket.localPort}`);
  }
  if (origin === undefined) return undefined;
  connection.host = host;
  connection.origin = origin;
  return origin;
}

/**
 * The absolute URL of `target` at `origin`, as the URL parser writes it; undefined when the request
 * must be answered 400.
 *
 * An absolute-form target (`GET http://other/x`, as sent to proxies) names its own host, and
 * RFC 9112 §3.2.2 has an origin server use it and ignore Host, so its authority wins (the Host
 * header must still be valid: originOf checks it first). What it does not decide is the scheme: that
 * stays the socket's (`origin`'s), whatever the line claims. Only http and https targets are taken,
 * and userinfo (`user:pass@`) is refused as RFC 9110 §4.2.4 advises: it serves only to disguise the
 * host, and undici will not make a Request from a URL that has it.
 */
export function absoluteUrl(origin: string, target: string): string | undefined {
  if (PLAIN_TARGET.test(target) && !target.includes('/.') && !/%2e/i.test(target)) return origin + target;
  if (target.charCodeAt(0) !== 47) {
    // OPTIONS * is about the server as a whole: its URL is the origin's.
    if (target === '*') return `${origin}/`;
    const form = ABSOLUTE_FORM.exec(target);
    if (form === null) return undefined;
    const scheme = form[1]!.toLowerCase();
    if (scheme !== 'http' && scheme !== 'https') return undefined;
    const own = hostOrigin(origin.startsWith('https:') ? 'https' : 'http', form[2]!);
    if (own === undefined) return undefined;
    const rest = form[3] ?? '/';
    return absoluteUrl(own, rest.charCodeAt(0) === 47 ? rest : `/${rest}`);
  }
  try {
    return new URL(origin + target).href;
  } catch {
    return undefined;
  }
}

/**
 * The status a request must be refused with for its version or its body's framing, before any
 * application code sees it; 0 when there is none. Node's parser takes a few requests RFC 9112 does
 * not, and hands them on:
 * - a request line without a version (HTTP/0.9's `GET /`), which is not a request line (§3): 400;
 * - `HTTP/2.0` in a text request line (a real HTTP/2 client sends a preface, which Node refuses):
 *   505, as RFC 9110 §15.6.6 has a server answer a major version it does not speak;
 * - Transfer-Encoding whose last coding is not chunked, where the body's length cannot be known
 *   (§6.3: 400, then close), or any Transfer-Encoding in HTTP/1.0, whose framing §6.1 calls faulty
 *   (a 1.0 proxy in front would read that body differently: request smuggling): 400. Node would refuse
 *   the former only once the application was running, when the body failed to parse;
 * - a coding before chunked (`gzip, chunked`): Node would hand the application the still encoded
 *   bytes as the body, so it is a coding this server does not understand (§6.1): 501.
 */
export function framingRefusal(req: IncomingMessage): number {
  if (req.httpVersionMajor !== 1) return req.httpVersionMajor === 0 ? 400 : 505;
  const coding = req.headers['transfer-encoding'];
  if (coding === undefined) return 0;
  if (req.httpVersionMinor === 0) return 400;
  if (coding === 'chunked') return 0;
  const codings = coding.toLowerCase().split(',');
  if (codings[codings.length - 1]!.trim() !== 'chunked') return 400;
  return codings.length === 1 ? 0 : 501;
}

/** `scheme://host` as the URL parser writes an origin; undefined if `host` is not a valid Host. */
function hostOrigin(scheme: string, host: string): string | undefined {
  if (PLAIN_HOST.test(host) && !host.endsWith(':80') && !host.endsWith(':443')) return `${scheme}://${host}`;
  if (!HOST.test(host)) return undefined;
  try {
    return new URL(`${scheme}://${host}`).origin;
  } catch {
    return undefined; // refused by the URL parser: a port past 65535, a bad IP literal, %2F…
  }
}

/**
 * True when the header list has more than one Host line. Node keeps only the first in
 * `req.headers`, but the application's `request.headers` would join them ("a, b"). Every request
 * pays for it (a loop over the names, about 20 ns for ten headers), so nothing is made: the name is
 * compared a character at a time, `| 32` folding the case of a letter.
 */
function hostRepeated(raw: string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (
      name.length === 4 &&
      (name.charCodeAt(0) | 32) === 104 &&
      (name.charCodeAt(1) | 32) === 111 &&
      (name.charCodeAt(2) | 32) === 115 &&
      (name.charCodeAt(3) | 32) === 116
    ) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/** How long a lingering close reads the rest of an upload once the response is complete (ms). */
export const LINGER_MS = 2000;
/** How much of the rest of an upload a lingering close reads before it gives up (bytes). */
export const LINGER_BYTES = 64 * 1024 * 1024;
/** How often a lingering close checks its bounds (ms): at loopback speed it may read a few MiB more. */
const LINGER_CHECK_MS = 50;

/**
 * A lingering close (RFC 9112 §9.6), for a response that is complete while its client is still
 * sending the request body (an early answer, a 413). Closing then, with upload bytes unread, makes
 * the kernel reset the connection, and the reset can beat the response to the client, which then
 * sees EPIPE or ECONNRESET instead of the answer. So the rest of the upload is read and dropped, for
 * at most {@link LINGER_MS} and {@link LINGER_BYTES}:
 * - if the response said keep-alive, the connection then carries on (its next request follows);
 * - if it said close (`close`, see {@link holdClose}), the connection is half-closed at once (a FIN
 *   right after the response: the client knows the answer is whole) and closed once the upload ends;
 * - past either bound, the connection is cut.
 * True when the connection was left to the lingering close (it closes it, if it must).
 */
export function linger(req: IncomingMessage, socket: Socket, close: boolean): boolean {
  if (socket.destroyed) return false;
  if (req.complete) {
    if (close) socket.destroySoon();
    return close;
  }
  if (close) socket.end();
  new Lingering(req, socket, close);
  return true;
}

class Lingering {
  private readonly since = Date.now();
  private readonly bytesBefore: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly req: IncomingMessage,
    private readonly socket: Socket,
    private readonly close: boolean,
  ) {
    // Counted from the socket: Node drops the body of a request nobody read without a 'data' event.
    this.bytesBefore = socket.bytesRead;
    this.timer = setInterval(this.check, LINGER_CHECK_MS);
    req.once('end', this.ended);
    socket.once('close', this.stop);
    req.resume();
  }

  private readonly check = (): void => {
    const socket = this.socket;
    if (Date.now() - this.since < LINGER_MS && socket.bytesRead - this.bytesBefore <= LINGER_BYTES) return;
    this.stop();
    socket.destroy();
  };

  private readonly ended = (): void => {
    this.stop();
    if (this.close) this.socket.destroySoon();
  };

  private readonly stop = (): void => {
    clearInterval(this.timer);
    this.req.off('end', this.ended);
    this.socket.off('close', this.stop);
  };
}

// What Node answers a request its parser refused (its own default 'clientError' handling).
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'Payload Too Large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
};

/**
 * serve()'s `'clientError'` handler: what Node does by default — a 400 (431, 408, 413 as the error
 * says) when nothing of a response was sent on the socket yet, then the socket destroyed — and the
 * exchange Node had already handed on (a chunked body that broke after a valid head) ends `errored`
 * with the status the client got, instead of looking like a client that left.
 */
export function refuseClient(error: Error & { code?: string }, socket: TrackedSocket): void {
  const connection = socket[CONNECTION];
  let status: number | undefined;
  if (socket.writable && connection?.first?.headSent !== true) {
    const [code, text] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'Bad Request'];
    socket.write(`HTTP/1.1 ${code} ${text}\r\nConnection: close\r\n\r\n`);
    status = code;
  }
  // A socket error (a reset) or an end of input mid-request is a client that left: the socket's
  // close says so. A request the parser refused, or one that timed out, is reported as such.
  const code = error.code ?? '';
  const refused =
    (code.startsWith('HPE_') && code !== 'HPE_INVALID_EOF_STATE') || code === 'ERR_HTTP_REQUEST_TIMEOUT';
  if (connection !== undefined && refused) connection.cut(error, status);
  else socket.destroy(error);
}
