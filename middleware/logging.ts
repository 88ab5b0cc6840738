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
 * `%l` and `%u` are always `-` (no identd, and the middleware does not know who was authenticated;
 * nothing the client sends, such as `Authorization`, is ever logged as the user); `%>s` is `-` when
 * no status was sent (the client left before the answer); `%b` is `-` for 0 bytes; `%t` is when the
 * request arrived, in UTC; `%r` is rebuilt from the request's method and URL, so its target is the
 * one the application saw (the URL parser writes a `"` as `%22` and a `\` in the path as `/`), and
 * its protocol is `HTTP/1.1` (the fetch `Request` does not carry the version).
 *
 * Every field a client can influence (the target, Referer, User-Agent) is escaped as Apache does —
 * `"` and `\` with a backslash, `\n`, `\r`, `\t`, `\b`, `\v` by name, every other control or
 * non-ASCII byte as `\xhh` — so a line can never be split, forged or carry terminal escape codes
 * (morgan escapes nothing). JSON lines escape everything outside printable ASCII as `\uXXXX`, so
 * they parse back to the original values. Node's parser refuses raw control and 8-bit bytes in a
 * request target (400, before any tsgi code), and its strict default refuses control characters
 * other than tab in header values; the escaping holds for what a lenient parser or another host
 * lets through.
 *
 * Cost: about half a microsecond per request for `common` (measured in benchmarks/middleware.ts):
 * the date is formatted once per second, the target is cut from the URL string rather than parsed,
 * each line is one template, and the only allocation of the layer itself is the close callback.
 *
 * Writing never slows the request path: lines are buffered and written in one `write()` per batch,
 * on the next turn of the event loop (`setImmediate`) or at once when 64 KiB are waiting. If the
 * stream pushes back (`write()` returns false) lines wait for its `'drain'`. Lines still buffered
 * when the process exits (`process.exit()`, the end of the event loop) are written synchronously in
 * its `'exit'` event; a process killed by a signal it does not handle loses them.
 *
 * Needs a tsgi request context (`context.onClose`): list it in `createHandler`'s middleware.
 */
import { match } from 'ts-pattern';
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

/**
 * Writes one access-log line per request when it is over.
 *
 * @example
 * const handler = createHandler(site, { middleware: [logging({ format: 'combined' }), gzip()] });
 * logging({ format: 'json', stream: fs.createWriteStream('access.log', { flags: 'a' }) });
 */
export function logging(options: LoggingOptions = {}): Middleware {
  const stream = options.stream ?? process.stdout;
  // The line builder is chosen once, here: a request pays for its format's template only.
  const line = match<unknown>(options.format ?? 'common')
    .with('common', () => commonLine)
    .with('combined', () => combinedLine)
    .with('json', () => jsonLine)
    .otherwise((format) => {
      throw new TypeError(
        `logging({ format }): format must be 'common', 'combined' or 'json', got ${typeof format === 'string' ? `'${format}'` : typeof format}`,
      );
    });
  if (typeof stream?.write !== 'function') {
    throw new TypeError('logging({ stream }): stream must have a write(text) method, like process.stdout');
  }
  const batch = new Batch(stream);
  const clock = new LogClock();

  const middleware: Middleware = function loggingMiddleware(next) {
    return function logging(request, context) {
      if (typeof context?.onClose !== 'function') {
        throw new TypeError(
          'logging(): the context has no onClose() — run the application through createHandler() (or serve()) so each request has a tsgi scope',
        );
      }
      const arrived = Date.now();
      // The layer's one object per request: the close callback must carry the request to its line.
      context.onClose((info) => batch.add(line(request, context, arrived, info, clock)));
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

/** Formats one line; `clock` holds the last second formatted, so most lines reuse its text. */
type Line = (
  request: Request,
  context: RequestContext,
  arrived: number,
  info: FinishInfo,
  clock: LogClock,
) => string;

const commonLine: Line = (request, context, arrived, info, clock) => {
  // Each piece is escaped on its own: testing a joined string would first copy it flat.
  const host = escapeLogItem(context.remoteAddress ?? '-');
  const method = escapeLogItem(request.method);
  const path = escapeLogItem(target(request.url));
  const status = info.status === 0 ? '-' : info.status;
  const bytes = info.bytesSent === 0 ? '-' : info.bytesSent;
  return `${host} - - [${clock.clf(arrived)}] "${method} ${path} HTTP/1.1" ${status} ${bytes}`;
};

const combinedLine: Line = (request, context, arrived, info, clock) =>
  `${commonLine(request, context, arrived, info, clock)} "${header(request, 'referer')}" "${header(request, 'user-agent')}"`;

const jsonLine: Line = (request, context, arrived, info, clock) => {
  const url = target(request.url);
  const query = url.indexOf('?');
  const time = clock.iso(arrived);
  const address = jsonString(context.remoteAddress ?? null);
  const method = jsonString(request.method);
  const quotedUrl = jsonString(url);
  // The path starts the URL: when the URL needed no escaping (it came back only quoted), neither does it.
  const path =
    query === -1
      ? quotedUrl
      : quotedUrl.length === url.length + 2
        ? `"${url.slice(0, query)}"`
        : jsonString(url.slice(0, query));
  const rounded = Math.round(info.durationMs * 1000) / 1000;
  const duration = Number.isFinite(rounded) ? rounded : null;
  const referer = jsonString(request.headers.get('referer'));
  const agent = jsonString(request.headers.get('user-agent'));
  // One template, the documented fields in their order; every string went through jsonString().
  return `{"time":"${time}","remoteAddress":${address},"method":${method},"url":${quotedUrl},"path":${path},"protocol":"HTTP/1.1","status":${info.status},"bytes":${info.bytesSent},"durationMs":${duration},"outcome":"${info.outcome}","referer":${referer},"userAgent":${agent}}`;
};

/**
 * The path and query of an absolute URL as a `Request` holds it (serialized, so the path starts at
 * the first `/` after `scheme://`), without the cost of parsing it into a `URL`.
 */
function target(url: string): string {
  const authority = url.indexOf('//');
  const slash = authority === -1 ? -1 : url.indexOf('/', authority + 2);
  if (slash === -1) {
    try {
      const { pathname, search } = new URL(url);
      return pathname + search;
    } catch {
      return url; // not a URL at all (a hand-made request): logged as it is, escaped
    }
  }
  const hash = url.indexOf('#', slash);
  return hash === -1 ? url.slice(slash) : url.slice(slash, hash);
}

function header(request: Request, name: string): string {
  const value = request.headers.get(name);
  return value === null ? '-' : escapeLogItem(value);
}

/** What neither a log item nor a JSON string may hold as it is: controls, `"`, `\`, non-ASCII. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const UNSAFE = /[\x00-\x1f"\\\x7f-\uffff]/;

/**
 * `value` as a JSON string (or `null`) that is printable ASCII: JSON.stringify leaves DEL, C1
 * controls (0x9b is a terminal's CSI) and U+2028/9 raw, so everything from 0x7f up is escaped too.
 */
function jsonString(value: string | null): string {
  if (value === null) return 'null';
  if (!UNSAFE.test(value)) return `"${value}"`;
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const NAMED: Record<string, string> = { '\b': '\\b', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' };
const encoder = new TextEncoder();

/** Apache's `ap_escape_logitem`: `"` and `\` escaped, control and non-ASCII bytes as `\xhh`. */
export function escapeLogItem(value: string): string {
  if (!UNSAFE.test(value)) return value;
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
  return `${two(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:${two(
    date.getUTCHours(),
  )}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * The dates of one logger's lines, formatted once per second: requests that arrive in the same
 * second (nearly all of them, under load) reuse the text.
 */
class LogClock {
  private clfSecond = Number.NaN;
  private clfText = '';
  private isoSecond = Number.NaN;
  private isoPrefix = '';

  /** {@link clfDate} of `time`. */
  clf(time: number): string {
    const second = Math.floor(time / 1000);
    if (second !== this.clfSecond) {
      this.clfSecond = second;
      this.clfText = clfDate(second * 1000);
    }
    return this.clfText;
  }

  /** `time` as `Date.prototype.toISOString()` writes it: `2000-10-10T13:55:36.123Z`. */
  iso(time: number): string {
    const second = Math.floor(time / 1000);
    if (second !== this.isoSecond) {
      this.isoSecond = second;
      this.isoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // up to the '.'
    }
    const ms = time - second * 1000;
    return `${this.isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
  }
}

/** Lines waiting to be written, and when to write them. */
class Batch {
  /** The lines waiting, each ended by a newline. */
  private text = '';
  private scheduled: NodeJS.Immediate | undefined;
  private waitingForDrain = false;
  private readonly flushNow = (): void => this.flush();

  constructor(private readonly stream: LogStream) {}

  add(line: string): void {
    if (this.text === '') process.once('exit', this.flushNow);
    this.text += `${line}\n`;
    if (this.waitingForDrain) return;
    if (this.text.length >= BATCH_BYTES) this.flush();
    else this.scheduled ??= setImmediate(this.flushNow);
  }

  flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const text = this.text;
    if (text === '') return;
    this.text = '';
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
