/**
 * Reporting errors to the operator: what the one hook (`SignalBus.onError`) is told, and the text its
 * default writes to stderr — a line saying what failed and on which request (method and path only: a
 * query string can carry tokens; never headers or a body), then the stack and its causes.
 *
 * Everything here must work on whatever was thrown: a string, null, a null-prototype object, an Error
 * whose `stack` or `message` getter throws, a Proxy. Building a report never throws.
 */
import type { SignalName } from './types.ts';

/**
 * What failed, as {@link SignalBus.onError} is told:
 * - `'application'`: the application or a middleware threw (sync or async) before a response was
 *   returned; the client got a 500 (and `got_request_exception` was sent);
 * - `'response'`: an exception recorded on a request that did not become a 500 — its body failed
 *   after the head went out (the connection was cut), or a Node listener mounted with
 *   `fromNodeListener()` failed after it had started its response; reported once the request is over;
 * - a signal name: a receiver of that signal threw or rejected (the error is a {@link ReceiverError});
 * - `'request_scope'`: closing a request went wrong (an `onClose` callback failed, cancellations did
 *   not settle within the grace period), or the server could not write what the handler returned.
 */
export type ErrorSource = 'application' | 'response' | SignalName | 'request_scope';

/** Raised (and reported, never thrown at the request) when a receiver fails. */
export class ReceiverError extends Error {
  override name = 'ReceiverError';
  constructor(
    readonly event: string,
    readonly receiver: string,
    options: { cause: unknown },
  ) {
    super(
      `tsgi: receiver ${receiver || '(anonymous)'} of '${event}' failed: ${describe(options.cause)}`,
      options,
    );
  }
}

/**
 * An error as text for a log: its stack, then the stack of each `cause` (at most 4 deep); for a thrown
 * value that is not an Error, one line describing it. Never throws.
 *
 * @example
 * signals.onError = (error, where) => logger.error({ where, stack: formatError(error) });
 */
export function formatError(error: unknown): string {
  let text = stackOf(error);
  let current = error;
  for (let depth = 1; depth < 4; depth++) {
    const cause = causeOf(current);
    if (cause === undefined) break;
    text += `\nCaused by: ${stackOf(cause)}`;
    current = cause;
  }
  return text;
}

/**
 * The status the client gets for an exception of the application: 500, unless it is one of tsgi's
 * own with the status the server answers instead (`PayloadTooLargeError` 413, `RequestTimeoutError`
 * 503). Never throws.
 */
function answeredWith(error: unknown): number {
  try {
    const status = (error as { status?: unknown } | null | undefined)?.status;
    const name = (error as { name?: unknown } | null | undefined)?.name;
    if ((status === 413 && name === 'PayloadTooLargeError') || (status === 503 && name === 'TimeoutError')) {
      return status;
    }
  } catch {
    // A getter that throws: the page is the handler's 500.
  }
  return 500;
}

/** The default report: one line saying what failed, and where, then the stack. Never throws. */
export function formatReport(error: unknown, where: ErrorSource, request?: Request): string {
  const on = requestLine(request);
  switch (where) {
    case 'application':
      return `tsgi: the application raised an exception${on}; the client got a ${answeredWith(error)}\n${formatError(error)}`;
    case 'response':
      return `tsgi: the response${on || ' to a request'} failed after it had started\n${formatError(error)}`;
    case 'request_scope':
      return `tsgi: a request could not be handled or closed cleanly${on}\n${formatError(error)}`;
    default: {
      // A receiver: the line names it, and the stack worth reading is that of what it threw.
      if (isReceiverError(error)) {
        const receiver = error.receiver || '(anonymous)';
        return `tsgi: receiver ${receiver} of '${error.event}' failed${on}\n${formatError(error.cause)}`;
      }
      return `tsgi: a receiver of '${String(where)}' failed${on}\n${formatError(error)}`;
    }
  }
}

/** One line for an error of any kind, for messages. Never throws. */
export function describe(error: unknown): string {
  try {
    if (error instanceof Error) return `${error.name}: ${error.message}`;
    return String(error);
  } catch {
    return describeOddValue(error);
  }
}

function stackOf(error: unknown): string {
  if (!isError(error)) {
    return `${describe(error)} (a thrown ${kindOf(error)}, not an Error, so there is no stack)`;
  }
  try {
    const stack = error.stack;
    if (typeof stack === 'string' && stack !== '') return stack;
    return `${describe(error)} (no stack)`;
  } catch {
    return `${describe(error)} (its stack could not be read)`;
  }
}

function isReceiverError(value: unknown): value is ReceiverError {
  try {
    return value instanceof ReceiverError;
  } catch {
    return false;
  }
}

function causeOf(error: unknown): unknown {
  try {
    return isError(error) ? error.cause : undefined;
  } catch {
    return undefined;
  }
}

function isError(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false; // a Proxy whose getPrototypeOf trap throws
  }
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  try {
    return Object.getPrototypeOf(value) === null ? 'null-prototype object' : 'object';
  } catch {
    return 'object';
  }
}

/** A value `String()` cannot convert (a null-prototype object, a throwing `toString`, `name` or `message`). */
function describeOddValue(value: unknown): string {
  try {
    const json = JSON.stringify(value);
    if (typeof json === 'string') return json.length > 200 ? `${json.slice(0, 200)}…` : json;
  } catch {
    // Cycles, BigInts, throwing getters: the tag below is still something.
  }
  try {
    return Object.prototype.toString.call(value);
  } catch {
    return '(a value that cannot be described)';
  }
}

/** ` on GET /path` (the path only: a query string can carry tokens), or '' when it is not known. */
function requestLine(request: Request | undefined): string {
  if (request === undefined || request === null) return '';
  try {
    const { pathname } = new URL(request.url);
    return ` on ${printable(request.method)} ${printable(pathname)}`;
  } catch {
    return '';
  }
}

/** Keeps a log line one line: anything outside printable ASCII becomes '?'. */
function printable(text: unknown): string {
  return String(text)
    .slice(0, 2000)
    .replace(/[^\x20-\x7e]/g, '?');
}
