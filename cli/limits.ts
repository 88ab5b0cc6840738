/**
 * The server's timeouts and limits as command-line flags, shared by `tsgi serve` and `tsgi runserver`:
 * their parseArgs definitions, their defaults (what a production user would pick, gunicorn's where it
 * has one), and how each reaches serve().
 *
 * Timeouts are seconds on the command line (fractions allowed) and milliseconds in serve()'s options.
 * `0` turns a timeout off; `--graceful-timeout 0` cuts in-flight requests at once. `--timeout` is also
 * the heartbeat limit of workers (heartbeat.ts): a worker whose event loop is blocked longer is
 * replaced.
 */
import type { ServeOptions } from '../src/node/serve.ts';
import { limit, seconds } from './args.ts';

/** The timeouts (ms) and limits one server runs with. */
export interface Limits {
  /** The request timeout and, with workers, the heartbeat limit. 0: off. Default: 30 s. */
  timeoutMs: number;
  /** Time to receive a request's headers (slow-loris). 0: off. Default: 10 s. */
  headersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. 0: no limit. Default: 5 s. */
  keepAliveTimeoutMs: number;
  /** How long a response waits on a client that stopped reading. 0: off. Default: 60 s. */
  sendTimeoutMs: number;
  /** Most connections open at once (per process). 0: no limit. Default: 0. */
  maxConnections: number;
  /** How long in-flight requests get to finish on SIGTERM before they are cut. Default: 30 s. */
  gracefulTimeoutMs: number;
}

/** The defaults, for `--help` and for the commands. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  timeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5000,
  sendTimeoutMs: 60_000,
  maxConnections: 0,
  gracefulTimeoutMs: 30_000,
});

/** The flags, to spread into a command's parseArgs options. */
export const LIMIT_OPTIONS = {
  timeout: { type: 'string', short: 't' },
  'headers-timeout': { type: 'string' },
  'keep-alive-timeout': { type: 'string' },
  'send-timeout': { type: 'string' },
  'max-connections': { type: 'string' },
  'graceful-timeout': { type: 'string' },
} as const;

type LimitValues = { [flag in keyof typeof LIMIT_OPTIONS]?: string | undefined };

/**
 * Reads the flags of {@link LIMIT_OPTIONS}, each checked with a one-line usage error that names it.
 *
 * @example
 * readLimits({ timeout: '2.5', 'max-connections': '100' }); // { timeoutMs: 2500, maxConnections: 100, … }
 */
export function readLimits(values: LimitValues): Limits {
  const given = {
    timeoutMs: seconds(values.timeout, '--timeout'),
    headersTimeoutMs: seconds(values['headers-timeout'], '--headers-timeout'),
    keepAliveTimeoutMs: seconds(values['keep-alive-timeout'], '--keep-alive-timeout'),
    sendTimeoutMs: seconds(values['send-timeout'], '--send-timeout'),
    maxConnections: limit(values['max-connections'], '--max-connections'),
    gracefulTimeoutMs: seconds(values['graceful-timeout'], '--graceful-timeout'),
  };
  const limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(given) as [keyof Limits, number | undefined][]) {
    if (value !== undefined) limits[key] = value;
  }
  return limits;
}

/**
 * The serve() options for `limits`.
 *
 * @example
 * await serve(app, { port: 8000, ...serveLimits(readLimits({ timeout: '10' })) });
 */
export function serveLimits(limits: Limits): ServeOptions {
  return {
    timeout: limits.timeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    sendTimeout: limits.sendTimeoutMs,
    maxConnections: limits.maxConnections,
    gracefulTimeout: limits.gracefulTimeoutMs,
  };
}
