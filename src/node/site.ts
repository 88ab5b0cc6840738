/**
 * A site: what one `serve()` server or one `toNodeListener()` listener shares between its requests —
 * the handler, the limits, the request-scope options (with the oracle that tells a scope which undici
 * bodies are fixed data), whether it is closing, how many exchanges are still open (so `close()` can
 * wait for them), and, for a listener inside a foreign host, which host servers hold the FastResponse
 * swap.
 */
import type { Server as NetServer } from 'node:net';
import { createHandler, isHandler, markAnswered } from '../handler.ts';
import type { RequestScope } from '../scope.ts';
import type { Application, Handler } from '../types.ts';
import { type FastResponse, useFastResponse } from './fast-response.ts';
import { undiciStaticBody } from './internals.ts';
import { Watchdog } from './timeouts.ts';

/**
 * Options shared by {@link serve} and {@link toNodeListener}.
 *
 * @example
 * const listener = toNodeListener(handler, { maxBodySize: 10 * 1024 * 1024, gracePeriodMs: 2000 });
 */
export interface ListenerOptions {
  /** Largest request body the application may read, in bytes; past it the server answers 413. Default: 1 MiB. */
  maxBodySize?: number;
  /** How long body cancellations and close callbacks may take once a request is over (ms). Default: 1000. */
  gracePeriodMs?: number;
  /** Where request-scope problems are reported. Default: the handler's `signals.onError`. */
  onError?: (error: unknown) => void;
  /**
   * Make the global `Response` tsgi's {@link FastResponse} while this server runs, so that
   * `new Response(text)` costs what an object costs (`instanceof Response` still holds both ways).
   * Replacing a global affects all code in the process — a `class X extends Response` defined while
   * it is swapped, a library comparing constructors — so it is never done by surprise: default `true`
   * for `serve()` (tsgi owns the process), `false` for `toNodeListener()` (the host is someone
   * else's). With `false`, responses are undici's own and are written from their bytes all the same.
   */
  fastResponse?: boolean;
  /**
   * The request timeout (ms): how long the application may take to produce its response. On expiry
   * `context.signal` aborts with a {@link RequestTimeoutError}, the client gets 503, and
   * `got_request_exception` fires. 0 turns it off. Default: 30 000 (gunicorn's `--timeout`), under
   * `toNodeListener()` too: a `node:http` host bounds how long a request takes to arrive, never how
   * long its response takes.
   */
  timeout?: number;
  /**
   * How long a client may leave sent bytes unread (ms) before its connection is cut (`errored`,
   * {@link SendTimeoutError}). 0 turns it off. Default: 60 000.
   */
  sendTimeout?: number;
}

export const DEFAULT_MAX_BODY_SIZE = 1024 * 1024;

/** What one listener (one site) shares between its requests. */
export class Site {
  readonly handler: Handler;
  readonly maxBodySize: number;
  readonly scopeOptions: {
    gracePeriodMs: number;
    onError: (error: unknown) => void;
    onFinished: () => void;
    fixedBody: (response: Response) => boolean;
  };
  /** Set by `close()`: answers go out with `Connection: close`, and sockets close when their last exchange ends. */
  closing = false;
  /** Exchanges whose scope has not finished yet. */
  open = 0;
  /** Set for toNodeListener(): the server is someone else's. */
  readonly hosted: boolean;
  /** Whether the global Response is swapped while this site's servers run. */
  readonly fastResponse: boolean;
  /** The request timeout (ms, 0: off). */
  readonly timeoutMs: number;
  /** The request and send timeouts' sweep; undefined when both are off. */
  readonly watchdog: Watchdog | undefined;
  /** toNodeListener: the host servers seen, each holding the FastResponse swap until it closes. */
  private hosts: Set<NetServer> | undefined;
  private whenIdle: (() => void) | undefined;

  constructor(app: Application, options: ListenerOptions, hosted: boolean) {
    if (typeof app !== 'function') {
      throw new TypeError(
        `tsgi: the application must be a function (request, context) => Response, got ${app === null ? 'null' : typeof app}`,
      );
    }
    this.handler = isHandler(app) ? app : createHandler(app);
    this.maxBodySize = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE;
    this.hosted = hosted;
    this.fastResponse = options.fastResponse ?? !hosted;
    this.timeoutMs = milliseconds(options.timeout, 'timeout', 30_000);
    this.watchdog = Watchdog.for({
      timeoutMs: this.timeoutMs,
      sendTimeoutMs: milliseconds(options.sendTimeout, 'sendTimeout', 60_000),
    });
    const bus = this.handler.signals;
    this.scopeOptions = {
      gracePeriodMs: options.gracePeriodMs ?? 1000,
      onError: options.onError ?? ((error: unknown) => bus.onError(error, 'request_scope')),
      onFinished: () => this.scopeFinished(),
      // Undici's responses made from a string or bytes are then never proxied at a layer boundary.
      fixedBody: undiciStaticBody,
    };
  }

  /** Swaps in FastResponse while `server`, a host running this listener, is serving. */
  useFastResponseWhile(server: NetServer | undefined): void {
    if (!this.fastResponse || server === undefined || this.hosts?.has(server)) return;
    this.hosts ??= new Set();
    this.hosts.add(server);
    const release = useFastResponse();
    server.once('close', () => {
      this.hosts?.delete(server);
      release();
    });
  }

  /**
   * The adapter failed a request itself (its request timeout): `got_request_exception` and a report,
   * as the handler does for an exception of the application, and not reported again when it finishes.
   */
  requestFailed(request: Request, scope: RequestScope, error: unknown): void {
    const handler = this.handler;
    const bus = handler.signals;
    markAnswered(scope);
    bus.dispatch('got_request_exception', { sender: handler, request, context: scope.context, error });
    bus.report(error, 'application', request);
  }

  /** Resolves once every exchange's scope has finished. */
  idle(): Promise<void> {
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.whenIdle = resolve;
    });
  }

  scopeFinished(): void {
    if (--this.open === 0 && this.whenIdle !== undefined) {
      const resolve = this.whenIdle;
      this.whenIdle = undefined;
      resolve();
    }
  }
}

/** A timeout option in ms: `fallback` when not given; a TypeError naming it when not a number ≥ 0. */
export function milliseconds(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0) || value === Number.POSITIVE_INFINITY) {
    throw new TypeError(
      `tsgi: the ${name} option must be a number of milliseconds ≥ 0 (0 turns it off), got ${String(value)}`,
    );
  }
  return value;
}
