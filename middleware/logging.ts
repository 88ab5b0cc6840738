/**
 * `logging()`: one access-log line per request, written when the request is over — after the last
 * byte went out, the client left, or the response failed — so the line has the real status, the
 * bytes sent, the duration and the outcome. Aborted and errored requests are logged too.
 *
 * Formats:
 * - `common` (default): Apache's Common Log Format, `%h %l %u %t "%r" %>s %b` —
 *   `127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a.gif HTTP/1.1" 200 2326`;
 * - `combined`: Common plus `"%{Referer}i" "%{User-agent}i"`;
 * - `json`: one object per line with `time` (ISO 8601), `remoteAddress`, `method`, `url` (path and
 *   query), `path`, `protocol`, `status`, `bytes`, `durationMs`, `outcome`, `referer`, `userAgent`.
 *
 * `%l` and `%u` are always `-` (no identd, and the middleware does not know who was authenticated);
 * `%>s` is `-` when no status was sent (the client left before the answer); `%b` is `-` for 0 bytes;
 * `%t` is when the request arrived, in UTC; the protocol is `HTTP/1.1` (the fetch `Request` does not
 * carry the version). Every field a client can influence is escaped as Apache does — `"` and `\`
 * with a backslash, `\n`, `\r`, `\t`, `\b`, `\v` by name, every other control or non-ASCII byte as
 * `\xhh` — so a line can never be split, forged or carry terminal escape codes. JSON lines escape
 * everything outside printable ASCII as `\uXXXX`, so they parse back to the original values.
 *
 * Writing never slows the request path: lines are buffered and written in one `write()` per batch,
 * on the next turn of the event loop (`setImmediate`) or at once when 64 KiB are waiting. If the
 * stream pushes back (`write()` returns false) lines wait for its `'drain'`. Lines still buffered
 * when the process exits (`process.exit()`, the end of the event loop) are written synchronously in
 * its `'exit'` event; a process killed by a signal it does not handle loses them.
 *
 * Needs a tsgi request context (`context.onClose`): list it in `createHandler`'s middleware.
 */
import type { FinishInfo, Middleware, RequestContext } from '../src/index.ts';

/** Where log lines go: anything with a `write(text)` (a Node writable, a file stream, a test array). */
export interface LogStream {
  /** Takes one batch of lines; returning `false` asks the logger to wait for `'drain'`. */
  write(text: string): unknown;
  once?(event: 'drain', listener: () => void): unknown;
}

/** Options of {@link logging}. */
export interface LoggingOptions {
  /** `common` (default), `combined`, or `json`. */
  format?: 'common' | 'combined' | 'json';
  /** Where lines go. Default: `process.stdout`. */
  stream?: LogStream;
}

const BATCH_BYTES = 64 * 1024;
const FORMATS = ['common', 'combined', 'json'] as const;

/**
 * Writes one access-log line per request when it is over.
 *
 * @example
 * const handler = createHandler(site, { middleware: [logging({ format: 'combined' }), gzip()] });
 * logging({ format: 'json', stream: fs.createWriteStream('access.log', { flags: 'a' }) });
 */
export function logging(options: LoggingOptions = {}): Middleware {
  const format = options.format ?? 'common';
  const stream = options.stream ?? process.stdout;
  if (!FORMATS.includes(format)) {
    throw new TypeError(`logging({ format }): format must be 'common', 'combined' or 'json', got ${format}`);
  }
  if (typeof stream?.write !== 'function') {
    throw new TypeError('logging({ stream }): stream must have a write(text) method, like process.stdout');
  }
  const line = format === 'json' ? jsonLine : format === 'combined' ? combinedLine : commonLine;
  const batch = new Batch(stream);

  const middleware: Middleware = function loggingMiddleware(next) {
    return function logging(request, context) {
      if (typeof context?.onClose !== 'function') {
        throw new TypeError(
          'logging(): the context has no onClose() — run the application through createHandler() (or serve()) so each request has a tsgi scope',
        );
      }
      const arrived = Date.now();
      context.onClose((info) => batch.add(line(request, context, arrived, info)));
      return next(request, context);
    };
  };
  Object.defineProperty(middleware, ACCESS_LOG, { value: true });
  return middleware;
}

const ACCESS_LOG: unique symbol = Symbol.for('tsgi.accessLog');

/**
 * True when `middleware` was made by {@link logging} — so a server that would add its own access
 * log (`tsgi runserver`) can see the site already writes one.
 *
 * @example
 * const logsAlready = settings.MIDDLEWARE.some(isAccessLog);
 */
export function isAccessLog(middleware: unknown): boolean {
  return typeof middleware === 'function' && (middleware as { [ACCESS_LOG]?: true })[ACCESS_LOG] === true;
}

type Line = (request: Request, context: RequestContext, arrived: number, info: FinishInfo) => string;

const commonLine: Line = (request, context, arrived, info) => {
  const { pathname, search } = new URL(request.url);
  const host = escapeLogItem(context.remoteAddress ?? '-');
  const requestLine = escapeLogItem(`${request.method} ${pathname}${search} HTTP/1.1`);
  const status = info.status === 0 ? '-' : info.status;
  const bytes = info.bytesSent === 0 ? '-' : info.bytesSent;
  return `${host} - - [${clfDate(arrived)}] "${requestLine}" ${status} ${bytes}`;
};

const combinedLine: Line = (request, context, arrived, info) =>
  `${commonLine(request, context, arrived, info)} "${header(request, 'referer')}" "${header(request, 'user-agent')}"`;

const jsonLine: Line = (request, context, arrived, info) => {
  const { pathname, search } = new URL(request.url);
  const entry = {
    time: new Date(arrived).toISOString(),
    remoteAddress: context.remoteAddress ?? null,
    method: request.method,
    url: pathname + search,
    path: pathname,
    protocol: 'HTTP/1.1',
    status: info.status,
    bytes: info.bytesSent,
    durationMs: Math.round(info.durationMs * 1000) / 1000,
    outcome: info.outcome,
    referer: request.headers.get('referer'),
    userAgent: request.headers.get('user-agent'),
  };
  // JSON.stringify leaves DEL, C1 controls (0x9b is a terminal's CSI) and U+2028/9 raw: escape them.
  return JSON.stringify(entry).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
};

function header(request: Request, name: string): string {
  const value = request.headers.get(name);
  return value === null ? '-' : escapeLogItem(value);
}

const NAMED: Record<string, string> = { '\b': '\\b', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' };
const encoder = new TextEncoder();

/** Apache's `ap_escape_logitem`: `"` and `\` escaped, control and non-ASCII bytes as `\xhh`. */
export function escapeLogItem(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (!/[\x00-\x1f"\\\x7f-\uffff]/.test(value)) return value;
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code >= 0x20 && code < 0x7f) out += char === '"' || char === '\\' ? `\\${char}` : char;
    else if (NAMED[char] !== undefined) out += NAMED[char];
    else if (code <= 0xff) out += hex(code);
    else for (const byte of encoder.encode(char)) out += hex(byte);
  }
  return out;
}

function hex(byte: number): string {
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `10/Oct/2000:13:55:36 +0000`, in UTC. */
export function clfDate(time: number): string {
  const date = new Date(time);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:${two(
    date.getUTCHours(),
  )}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
}

/** Lines waiting to be written, and when to write them. */
class Batch {
  private lines: string[] = [];
  private bytes = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private waitingForDrain = false;
  private readonly flushNow = (): void => this.flush();

  constructor(private readonly stream: LogStream) {}

  add(line: string): void {
    if (this.lines.length === 0) process.once('exit', this.flushNow);
    this.lines.push(line);
    this.bytes += line.length + 1;
    if (this.waitingForDrain) return;
    if (this.bytes >= BATCH_BYTES) this.flush();
    else this.scheduled ??= setImmediate(this.flushNow);
  }

  flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.lines.length === 0) return;
    const text = `${this.lines.join('\n')}\n`;
    this.lines = [];
    this.bytes = 0;
    process.off('exit', this.flushNow);
    try {
      if (this.stream.write(text) === false && typeof this.stream.once === 'function') {
        this.waitingForDrain = true;
        this.stream.once('drain', () => {
          this.waitingForDrain = false;
          this.flush();
        });
      }
    } catch (error) {
      // A broken log stream must not break requests; say so once per batch where someone may see it.
      console.error('tsgi logging(): writing the access log failed:', error);
    }
  }
}
