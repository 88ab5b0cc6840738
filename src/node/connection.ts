/**
 * A connection as a site sees it: the exchanges still open on one socket, oldest first (pipelined
 * requests queue up behind a slow response), the origin its Host header made, and what happens when
 * the socket closes — every exchange still open there is over, since pipelined responses queued
 * behind a slow one get no 'close' of their own.
 *
 * One socket can carry several sites (a host that mounts two tsgi listeners): each gets its own
 * Connection, found from the socket's first one.
 *
 * The exchanges are known here only as {@link OpenExchange}s, so this module does not depend on the
 * exchange's.
 */
import type { IncomingMessage } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { ScopeOptions } from '../scope.ts';
import type { Site } from './site.ts';

/** An exchange as its connection keeps it: a link in the list, told when the socket has closed. */
export interface OpenExchange {
  previous: OpenExchange | undefined;
  next: OpenExchange | undefined;
  /** The socket closed: the exchange is over (completed if its response had finished, else aborted). */
  closed(): void;
}

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
// the default port) goes through `new URL`.
const PLAIN_TARGET = /^\/[\w\-.~!$&()*+,;=:@/?%]*$/;
const PLAIN_HOST = /^(?:[a-z0-9-]+\.)*[a-z][a-z0-9-]*(?::[1-9]\d{0,3})?$/;

/** The origin (`http://host:port`) of a request, or undefined when its Host makes no valid URL. */
export function originOf(req: IncomingMessage, connection: Connection): string | undefined {
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
export function absoluteUrl(origin: string, target: string): string | undefined {
  if (PLAIN_TARGET.test(target) && !target.includes('/.') && !/%2e/i.test(target)) return origin + target;
  try {
    // Absolute-form targets (from proxies) are URLs already; '*' (OPTIONS *) becomes the origin.
    if (target === '*') return `${origin}/`;
    return new URL(target.startsWith('/') ? origin + target : target).href;
  } catch {
    return undefined;
  }
}
