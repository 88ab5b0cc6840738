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
        throw new UsageError(
          message.includes('argument missing')
            ? `${option} needs a value`
            : `${option} does not take a value`,
        );
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

/** Seconds given on the command line, in ms. */
export function seconds(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const value = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isNaN(value)) throw new UsageError(`${what} must be a number of seconds, got '${text}'`);
  return value * 1000;
}
