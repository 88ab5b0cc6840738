/**
 * Reading the command line: `parseArgs` errors turned into one-line {@link UsageError}s, and the
 * values the commands share (addresses, ports, counts, seconds), each checked with a message that
 * names the flag and what it expected.
 */
import { isIPv6 } from 'node:net';

/** A mistake in the command line: reported with a `--help` hint, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Every command takes `-h`/`--help`. */
export const HELP_OPTION = { type: 'boolean', short: 'h' } as const;

/** Every serving command takes `--verbose`: a failure prints its whole stack, not one line. */
export const VERBOSE_OPTION = { type: 'boolean' } as const;

/** Runs parseArgs, turning its errors into one-line usage errors. */
export function parsing<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const option = /'(?:-\w, )?(--?[\w-]+)/.exec(message)?.[1] ?? '';
    switch ((error as { code?: string }).code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UsageError(`unknown option '${option}'`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        if (message.includes('argument missing')) throw new UsageError(`${option} needs a value`);
        // `--timeout -1`: parseArgs will not take a value that looks like an option.
        if (message.includes('ambiguous'))
          throw new UsageError(
            `${option} needs a value (one that starts with '-' is written ${option}=VALUE)`,
          );
        throw new UsageError(`${option} does not take a value`);
      default:
        throw new UsageError(message);
    }
  }
}

/** `HOST:PORT`, `[v6]:PORT`, `:PORT`, `PORT` or `HOST`. */
export function parseAddress(text: string, what: string): { host?: string; port?: number } {
  if (text.startsWith('unix:'))
    throw new UsageError(`${what}: unix sockets are not supported, use HOST:PORT`);
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*))(?::([^:]*))?$/.exec(text);
  if (match === null) {
    if (isIPv6(text)) return { host: text };
    throw new UsageError(`${what}: '${text}' is not HOST:PORT`);
  }
  const host = match[1] ?? match[2];
  const port = match[3];
  if (port === undefined && /^\d+$/.test(host ?? '')) return { port: parsePort(host!, what) };
  return {
    ...(host ? { host } : {}),
    ...(port === undefined ? {} : { port: parsePort(port, what) }),
  };
}

export function parsePort(text: string, what: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`${what}: '${text}' is not a port (0-65535)`);
  return port;
}

/**
 * The port a platform gives in `$PORT` (Heroku, Cloud Run, Render, Fly…), or undefined when it is
 * unset or empty. A bad value is a usage error that names the variable, not a silent default.
 */
export function envPort(env: Record<string, string | undefined>): number | undefined {
  const text = env.PORT?.trim();
  return text ? parsePort(text, 'PORT') : undefined;
}

export function count(text: string, what: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : 0;
  if (value < 1) throw new UsageError(`${what} must be a whole number of at least 1, got '${text}'`);
  return value;
}

/** The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days); a longer one fires at once. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/**
 * Seconds given on the command line (fractions allowed, as gunicorn's), in whole ms: Node's timeouts
 * must be integers, and a positive value never rounds down to 0, which would turn the timeout off.
 */
export function seconds(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const value = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isNaN(value)) throw new UsageError(`${what} must be a number of seconds, got '${text}'`);
  if (value > MAX_TIMER_SECONDS) {
    throw new UsageError(
      `${what} must be at most ${MAX_TIMER_SECONDS} seconds (about 24 days), got '${text}'`,
    );
  }
  return value === 0 ? 0 : Math.max(1, Math.round(value * 1000));
}

/** A whole number of at least 0 (a limit, where 0 means none). */
export function limit(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${what} must be a whole number (0 for no limit), got '${text}'`);
  }
  return Number(text);
}
