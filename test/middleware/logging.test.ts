import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, mock } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzip, type LoggingOptions, type LogStream, logging } from '../../middleware/index.ts';
import { clfDate, escapeLogItem } from '../../middleware/logging.ts';
import { type Application, createHandler, type Handler, SignalBus, toNodeListener } from '../../src/index.ts';
import { deferred, get, open, rawExchange, withServer } from '../fixtures/client.ts';
import { exchange } from '../fixtures/host.ts';
import { recordingStream } from '../fixtures/streams.ts';

const DATE = String.raw`\[\d{2}/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d{2}:\d{2}:\d{2} \+0000\]`;
const COMMON = new RegExp(String.raw`^(\S+) - - ${DATE} "([^"\\]*(?:\\.[^"\\]*)*)" (\d{3}|-) (\d+|-)$`);
const COMBINED = new RegExp(
  `${COMMON.source.slice(0, -1)} "([^"\\\\]*(?:\\\\.[^"\\\\]*)*)" "([^"\\\\]*(?:\\\\.[^"\\\\]*)*)"$`,
);
const PRINTABLE = /^[\x20-\x7e]*$/;

/** A log stream that keeps lines and batches, and lets a test wait for a number of lines. */
function sink() {
  const lines: string[] = [];
  const batches: string[] = [];
  let waiter: { count: number; resolve: () => void } | undefined;
  const stream: LogStream = {
    write(text: string) {
      batches.push(text);
      lines.push(...text.split('\n').slice(0, -1));
      if (waiter !== undefined && lines.length >= waiter.count) waiter.resolve();
      return true;
    },
  };
  const lineCount = (count: number): Promise<void> =>
    lines.length >= count
      ? Promise.resolve()
      : new Promise((resolve) => {
          waiter = { count, resolve };
        });
  return { stream, lines, batches, lineCount };
}

const site: Application = (request) => {
  const { pathname } = new URL(request.url);
  if (pathname === '/empty') return new Response(null, { status: 204 });
  if (pathname === '/missing') return new Response('no such page', { status: 404 });
  return new Response('hello, log', { headers: { 'content-type': 'text/plain' } });
};

function logged(
  options: LoggingOptions,
  app: Application = site,
): { handler: Handler } & ReturnType<typeof sink> {
  const out = sink();
  const handler = createHandler(app, {
    middleware: [logging({ ...options, stream: out.stream })],
    signals: new SignalBus(),
  });
  return { handler, ...out };
}

describe('logging()', () => {
  describe("format 'common' (the default), over a real connection", () => {
    it('writes one Apache Common line per request', async () => {
      const { handler, lines, lineCount } = logged({});
      await withServer(handler, async (server) => {
        await get(`${server.url}/page?x=1`);
        await lineCount(1);
      });
      assert.equal(lines.length, 1);
      const match = COMMON.exec(lines[0]!);
      assert.ok(match, lines[0]);
      assert.equal(match[1], '127.0.0.1');
      assert.equal(match[2], 'GET /page?x=1 HTTP/1.1');
      assert.equal(match[3], '200');
      assert.equal(match[4], String('hello, log'.length));
    });

    it("writes %b as '-' when no body bytes were sent, and the real status", async () => {
      const { handler, lines, lineCount } = logged({});
      await withServer(handler, async (server) => {
        await get(`${server.url}/empty`);
        await get(`${server.url}/missing`, { method: 'POST', body: 'x' });
        await lineCount(2);
      });
      assert.match(lines[0]!, / "GET \/empty HTTP\/1\.1" 204 -$/);
      assert.match(lines[1]!, / "POST \/missing HTTP\/1\.1" 404 12$/);
    });

    it('counts the bytes actually sent: compressed bytes when gzip is inside it', async () => {
      const out = sink();
      const big = () =>
        new Response('compress me '.repeat(1000), { headers: { 'content-type': 'text/plain' } });
      const handler = createHandler(big, {
        middleware: [logging({ stream: out.stream }), gzip()],
        signals: new SignalBus(),
      });
      let received = 0;
      await withServer(handler, async (server) => {
        received = (await get(`${server.url}/`, { headers: { 'accept-encoding': 'gzip' } })).body.length;
        await out.lineCount(1);
      });
      assert.equal(COMMON.exec(out.lines[0]!)?.[4], String(received));
    });
  });

  describe("format 'combined'", () => {
    it('adds the quoted Referer and User-Agent', async () => {
      const { handler, lines, lineCount } = logged({ format: 'combined' });
      await withServer(handler, async (server) => {
        await get(`${server.url}/a`, {
          headers: { referer: 'http://example.com/', 'user-agent': 'curl/8.0' },
        });
        await get(`${server.url}/b`, { headers: {} });
        await lineCount(2);
      });
      const first = COMBINED.exec(lines[0]!);
      assert.ok(first, lines[0]);
      assert.equal(first[5], 'http://example.com/');
      assert.equal(first[6], 'curl/8.0');
      const second = COMBINED.exec(lines[1]!);
      assert.ok(second, lines[1]);
      assert.equal(second[5], '-');
      assert.equal(second[6], '-');
    });
  });

  describe("format 'json'", () => {
    it('writes one object per line with named fields', async () => {
      const { handler, lines, lineCount } = logged({ format: 'json' });
      await withServer(handler, async (server) => {
        await get(`${server.url}/page?x=1`, { headers: { referer: 'http://r/', 'user-agent': 'ua' } });
        await lineCount(1);
      });
      const entry = JSON.parse(lines[0]!);
      assert.deepEqual(Object.keys(entry), [
        'time',
        'remoteAddress',
        'method',
        'url',
        'path',
        'protocol',
        'status',
        'bytes',
        'durationMs',
        'outcome',
        'referer',
        'userAgent',
      ]);
      assert.equal(Number.isNaN(Date.parse(entry.time)), false);
      assert.equal(entry.remoteAddress, '127.0.0.1');
      assert.equal(entry.method, 'GET');
      assert.equal(entry.url, '/page?x=1');
      assert.equal(entry.path, '/page');
      assert.equal(entry.status, 200);
      assert.equal(entry.bytes, 10);
      assert.equal(typeof entry.durationMs, 'number');
      assert.equal(entry.outcome, 'completed');
      assert.equal(entry.referer, 'http://r/');
      assert.equal(entry.userAgent, 'ua');
    });
  });

  describe('when the request is over', () => {
    it('writes the line only once the body went out, not when the application returned', async () => {
      const release = deferred();
      let step = 0;
      const slow: Application = () =>
        new Response(
          new ReadableStream({
            async pull(controller) {
              if (step++ === 0) controller.enqueue(new TextEncoder().encode('first;'));
              else {
                await release.promise;
                controller.close();
              }
            },
          }),
        );
      const { handler, lines, lineCount } = logged({}, slow);
      await withServer(handler, async (server) => {
        const { res } = await open(`${server.url}/slow`);
        await new Promise((resolve) => res.once('data', resolve));
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(lines.length, 0, 'logged while the body was still going out');
        release.resolve();
        res.resume();
        await lineCount(1);
      });
      assert.match(lines[0]!, /"GET \/slow HTTP\/1\.1" 200 6$/);
    });

    it('logs a request whose client went away, with the outcome', async () => {
      const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
      const { handler, lines, lineCount } = logged({ format: 'json' }, () => new Response(source.stream));
      await withServer(handler, async (server) => {
        const { req, res } = await open(`${server.url}/endless`);
        await new Promise((resolve) => res.once('data', resolve));
        req.destroy();
        await lineCount(1);
      });
      const entry = JSON.parse(lines[0]!);
      assert.equal(entry.outcome, 'aborted');
      assert.equal(entry.status, 200);
      assert.equal(source.cancelled, true);
    });

    it("logs a request that left before the answer with status '-'", async () => {
      const { handler, lines } = logged({}, () => new Response('late'));
      await exchange(handler, new Request('http://127.0.0.1/gone'), 'leave-before-response');
      await new Promise((resolve) => setImmediate(resolve));
      assert.match(lines[0]!, /"GET \/gone HTTP\/1\.1" - -$/);
    });

    it('logs a response whose body failed as errored', async () => {
      const source = recordingStream({ chunks: 5, failAt: 1 });
      const { handler, lines } = logged({ format: 'json' }, () => new Response(source.stream));
      await exchange(handler, new Request('http://127.0.0.1/fails'));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(JSON.parse(lines[0]!).outcome, 'errored');
    });
  });

  describe('writing', () => {
    it('never writes on the request path: lines go out in one batch on a later turn', async () => {
      const { handler, lines, batches } = logged({});
      await Promise.all(
        Array.from({ length: 5 }, (_, i) => exchange(handler, new Request(`http://127.0.0.1/${i}`))),
      );
      assert.equal(batches.length, 0, 'written before the event loop turned');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(batches.length, 1);
      assert.equal(lines.length, 5);
    });

    it('writes at once when 64 KiB of lines are waiting', async () => {
      const { handler, batches } = logged({});
      const long = `/${'x'.repeat(8 * 1024)}`;
      for (let i = 0; i < 8; i++) await exchange(handler, new Request(`http://127.0.0.1${long}`));
      assert.equal(batches.length, 1, 'the eighth 8 KiB line should have flushed the batch');
      await new Promise((resolve) => setImmediate(resolve));
    });

    it("waits for 'drain' when the stream pushes back, then writes what waited", async () => {
      const writes: string[] = [];
      let drain: (() => void) | undefined;
      const stream: LogStream = {
        write(text) {
          writes.push(text);
          return false;
        },
        once(_event, listener) {
          drain = listener;
        },
      };
      const handler = createHandler(site, { middleware: [logging({ stream })], signals: new SignalBus() });
      await exchange(handler, new Request('http://127.0.0.1/one'));
      await new Promise((resolve) => setImmediate(resolve));
      await exchange(handler, new Request('http://127.0.0.1/two'));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(writes.length, 1, 'wrote while the stream was full');
      drain!();
      assert.equal(writes.length, 2);
      assert.match(writes[1]!, /GET \/two /);
    });

    it('writes what is buffered when the process exits', () => {
      const script = fileURLToPath(new URL('../fixtures/log-then-exit.ts', import.meta.url));
      const child = spawnSync(process.execPath, ['--import', 'tsx', script], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(child.status, 0, child.stderr);
      assert.match(child.stdout, /^\S+ - - \[[^\]]+\] "GET \/before-exit HTTP\/1\.1" 200 2\n$/);
    });
  });

  describe('escaping what the client sent', () => {
    it('escapes control, quote, backslash and non-ASCII characters as Apache does', () => {
      assert.equal(escapeLogItem('plain text/1.0'), 'plain text/1.0');
      assert.equal(escapeLogItem('a"b\\c'), 'a\\"b\\\\c');
      assert.equal(escapeLogItem('\n\r\t\b\v'), '\\n\\r\\t\\b\\v');
      assert.equal(escapeLogItem('\x1b[31mred\x07\x00\x7f'), '\\x1b[31mred\\x07\\x00\\x7f');
      assert.equal(escapeLogItem('\x9b\xff'), '\\x9b\\xff');
      // Header values are byte strings (é arrives as the byte 0xe9); beyond U+00FF, the UTF-8 bytes.
      assert.equal(escapeLogItem('é€'), '\\xe9\\xe2\\x82\\xac');
    });

    it('keeps a hostile User-Agent and Referer on one printable line (in-process)', async () => {
      const { handler, lines } = logged({ format: 'combined' });
      const hostile = new Request('http://127.0.0.1/x', {
        headers: { 'user-agent': 'evil\x1b[2J\x1b]0;pwned\x07" 200 1', referer: 'a\\"\x9b' },
      });
      await exchange(handler, hostile);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, PRINTABLE);
      const match = COMBINED.exec(lines[0]!);
      assert.ok(match, lines[0]);
      assert.equal(match[5], 'a\\\\\\"\\x9b');
      assert.equal(match[6], 'evil\\x1b[2J\\x1b]0;pwned\\x07\\" 200 1');
    });

    it('keeps JSON lines printable ASCII that parse back to the original values', async () => {
      const { handler, lines } = logged({ format: 'json' });
      const ua = 'evil\x1b[2J\x7f\x9b"\\\xe9';
      await exchange(handler, new Request('http://127.0.0.1/x', { headers: { 'user-agent': ua } }));
      await new Promise((resolve) => setImmediate(resolve));
      assert.match(lines[0]!, PRINTABLE);
      assert.equal(JSON.parse(lines[0]!).userAgent, ua);
    });

    it('gives exactly one safe line for a raw request carrying CR, LF and ESC (strict parser)', async () => {
      const { handler, lines, lineCount } = logged({ format: 'combined' });
      await withServer(handler, async (server) => {
        // A path can carry CR/LF/ESC only percent-encoded; a header value can carry quotes, tabs and
        // 8-bit bytes (0x9b is CSI on 8-bit terminals). A bare CR or LF in a header makes node:http
        // answer 400 before any tsgi code runs, and CRLF just ends the header.
        const head =
          'GET /a%0d%0a%1b[31mred HTTP/1.1\r\nHost: x\r\n' +
          'User-Agent: ua "quoted" \\ \t\x9b[2J\xff\r\nX-Injected: 1.2.3.4 - - [forged]\r\nConnection: close\r\n\r\n';
        const answer = await rawExchange(server.port, head);
        assert.match(answer, /^HTTP\/1\.1 200 /);
        await lineCount(1);
      });
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, PRINTABLE);
      const match = COMBINED.exec(lines[0]!);
      assert.ok(match, lines[0]);
      assert.equal(match[2], 'GET /a%0d%0a%1b[31mred HTTP/1.1');
      assert.equal(match[6], 'ua \\"quoted\\" \\\\ \\t\\x9b[2J\\xff');
    });

    it('gives exactly one safe line for raw ESC, BEL and DEL bytes (a lenient parser lets them in)', async () => {
      const { handler, lines, lineCount } = logged({ format: 'combined' });
      const server = http.createServer({ insecureHTTPParser: true }, toNodeListener(handler));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as AddressInfo;
        const head =
          'GET /path HTTP/1.1\r\nHost: x\r\nUser-Agent: \x1b[31mred\x1b[0m\x07\x7f\r\nReferer: \x1b]0;title\x07\r\nConnection: close\r\n\r\n';
        assert.match(await rawExchange(port, head), /^HTTP\/1\.1 200 /);
        await lineCount(1);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, PRINTABLE);
      const match = COMBINED.exec(lines[0]!);
      assert.ok(match, lines[0]);
      assert.equal(match[5], '\\x1b]0;title\\x07');
      assert.equal(match[6], '\\x1b[31mred\\x1b[0m\\x07\\x7f');
    });
  });

  describe('every format, field by field, over a raw socket', () => {
    // Quote, backslash, tab, ESC, BEL, DEL and two 8-bit bytes (a header value is a byte string:
    // 0xe9 arrives as é). Node's lenient parser lets C0 controls into header values; its strict one
    // answers 400 for them before any tsgi code runs.
    const hostile = 'a"b\\c\td\x1b[31m\x07\x7f\xe9\xff" 200 1';
    const user = Buffer.from('evil\x1b[2J"\\:secret', 'latin1').toString('base64');

    /** What the application saw of the request, to compare the line with. */
    interface Seen {
      url: string;
      referer: string | null;
      userAgent: string | null;
    }

    /** Sends `head` as is to a lenient node:http server running the logged site; one line back. */
    async function send(
      format: LoggingOptions['format'],
      head: string,
    ): Promise<{ line: string; seen: Seen }> {
      let seen: Seen | undefined;
      const app: Application = (request) => {
        seen = {
          url: request.url,
          referer: request.headers.get('referer'),
          userAgent: request.headers.get('user-agent'),
        };
        return new Response('ok');
      };
      const { handler, lines, lineCount } = logged({ format }, app);
      const server = http.createServer({ insecureHTTPParser: true }, toNodeListener(handler));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as AddressInfo;
        assert.match(await rawExchange(port, head), /^HTTP\/1\.1 200 /);
        await lineCount(1);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, PRINTABLE);
      return { line: lines[0]!, seen: seen! };
    }

    const request = (target: string, headers = ''): string =>
      `GET ${target} HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`;
    const pathAndQuery = (url: string): string => {
      const { pathname, search } = new URL(url);
      return pathname + search;
    };
    /** The fields of a Common or Combined line, or of a JSON line. */
    const fields = (format: LoggingOptions['format'], line: string) => {
      if (format === 'json') return JSON.parse(line) as Record<string, unknown>;
      const match = (format === 'combined' ? COMBINED : COMMON).exec(line);
      assert.ok(match, line);
      return match;
    };

    for (const format of ['common', 'combined', 'json'] as const) {
      it(`${format}: the request target with quotes and backslashes (the URL the application saw)`, async () => {
        // node:http takes `"` and `\` in a target raw; the URL parser then writes `"` as %22 and
        // turns `\` in the path into `/`, but a backslash in the query stays.
        const { line, seen } = await send(format, request('/p"q\\r?x="y"&z=\\w%0d%0a%1b'));
        const target = pathAndQuery(seen.url);
        assert.ok(target.includes('\\'), target);
        const got = fields(format, line);
        if (format === 'json') {
          assert.equal((got as Record<string, unknown>).url, target);
          assert.equal((got as Record<string, unknown>).path, new URL(seen.url).pathname);
        } else assert.equal((got as RegExpExecArray)[2], escapeLogItem(`GET ${target} HTTP/1.1`));
      });

      it(`${format}: a Referer with control characters, quotes, backslashes and 8-bit bytes`, async () => {
        const { line, seen } = await send(format, request('/r', `Referer: ${hostile}\r\n`));
        assert.equal(seen.referer, hostile);
        const got = fields(format, line);
        if (format === 'json') assert.equal((got as Record<string, unknown>).referer, hostile);
        else if (format === 'combined') assert.equal((got as RegExpExecArray)[5], escapeLogItem(hostile));
        else assert.ok(!line.includes('31m'), 'common logs no Referer');
      });

      it(`${format}: a User-Agent with control characters, quotes, backslashes and 8-bit bytes`, async () => {
        const { line, seen } = await send(format, request('/u', `User-Agent: ${hostile}\r\n`));
        assert.equal(seen.userAgent, hostile);
        const got = fields(format, line);
        if (format === 'json') assert.equal((got as Record<string, unknown>).userAgent, hostile);
        else if (format === 'combined') {
          assert.equal((got as RegExpExecArray)[6], escapeLogItem(hostile));
          assert.equal(escapeLogItem(hostile), 'a\\"b\\\\c\\td\\x1b[31m\\x07\\x7f\\xe9\\xff\\" 200 1');
        } else assert.ok(!line.includes('31m'), 'common logs no User-Agent');
      });

      it(`${format}: the user (%u) is never taken from the request, however hostile its credentials`, async () => {
        const { line } = await send(
          format,
          request(
            '/me',
            `Authorization: Basic ${user}\r\nRemote-User: evil\x1b[2J\r\nX-Forwarded-User: evil\r\n`,
          ),
        );
        assert.ok(!line.includes('evil'), line);
        if (format === 'json')
          assert.equal('user' in (fields(format, line) as Record<string, unknown>), false);
        else assert.match(line, /^\S+ - - \[/);
      });
    }

    it('a target with raw control or 8-bit bytes is refused by Node before any tsgi code: nothing is logged', async () => {
      const { handler, lines } = logged({ format: 'combined' });
      await withServer(handler, async (server) => {
        for (const target of ['/a\x1bb', '/\xe9\xff', '/a\x7fb', '/a\x00b']) {
          assert.match(
            await rawExchange(server.port, request(target)),
            /^HTTP\/1\.1 400 /,
            JSON.stringify(target),
          );
        }
      });
      await new Promise((resolve) => setImmediate(resolve));
      for (const line of lines) assert.match(line, PRINTABLE);
    });
  });

  describe('when something inside throws what is not an Error', () => {
    for (const [name, make] of [
      ['a null-prototype object', () => Object.create(null) as unknown],
      ['a string', () => 'plain string' as unknown],
    ] as const) {
      it(`logs a 500 for a layer that throws ${name}, in every format`, async () => {
        for (const format of ['common', 'combined', 'json'] as const) {
          const value = make();
          const out = sink();
          const bus = new SignalBus();
          bus.onError = () => {};
          const thrower: Application = () => {
            throw value;
          };
          const handler = createHandler(thrower, {
            middleware: [logging({ format, stream: out.stream })],
            signals: bus,
          });
          const { status } = await exchange(handler, new Request('http://127.0.0.1/throws'));
          assert.equal(status, 500);
          await out.lineCount(1);
          assert.match(out.lines[0]!, PRINTABLE);
          if (format === 'json') assert.equal(JSON.parse(out.lines[0]!).status, 500);
          else assert.match(out.lines[0]!, /"GET \/throws HTTP\/1\.1" 500 \d+/);
        }
      });

      it(`logs a body that fails with ${name} as errored`, async () => {
        const value = make();
        const bus = new SignalBus();
        bus.onError = () => {};
        const out = sink();
        const failing: Application = () =>
          new Response(
            new ReadableStream({
              pull(controller) {
                controller.error(value);
              },
            }),
          );
        const handler = createHandler(failing, {
          middleware: [logging({ format: 'json', stream: out.stream }), gzip()],
          signals: bus,
        });
        const { info } = await exchange(
          handler,
          new Request('http://127.0.0.1/fails', { headers: { 'accept-encoding': 'gzip' } }),
        );
        assert.equal(info.outcome, 'errored');
        await out.lineCount(1);
        assert.equal(JSON.parse(out.lines[0]!).outcome, 'errored');
      });
    }
  });

  describe('the date', () => {
    it("is Apache's [day/Mon/year:hh:mm:ss +0000] in UTC", () => {
      assert.equal(clfDate(Date.UTC(2000, 9, 10, 13, 55, 36)), '10/Oct/2000:13:55:36 +0000');
      assert.equal(clfDate(Date.UTC(2024, 0, 2, 3, 4, 5)), '02/Jan/2024:03:04:05 +0000');
    });

    it('is formatted once per second, and each line still gets its own second and milliseconds', async () => {
      // Only Date is faked: the batch still writes on a real setImmediate.
      mock.timers.enable({ apis: ['Date'], now: Date.UTC(2024, 1, 29, 23, 59, 58, 7) });
      try {
        const common = logged({});
        const json = logged({ format: 'json' });
        const both = async (path: string): Promise<void> => {
          await exchange(common.handler, new Request(`http://127.0.0.1${path}`));
          await exchange(json.handler, new Request(`http://127.0.0.1${path}`));
        };
        await both('/a'); // 23:59:58.007
        mock.timers.tick(85); // .092, the same second
        await both('/b');
        mock.timers.tick(908); // 23:59:59.000
        await both('/c');
        mock.timers.tick(1001); // 00:00:00.001, the next day (a leap day before it)
        await both('/d');
        await common.lineCount(4);
        await json.lineCount(4);
        const dates = common.lines.map((line) => /\[([^\]]+)\]/.exec(line)![1]);
        assert.deepEqual(dates, [
          '29/Feb/2024:23:59:58 +0000',
          '29/Feb/2024:23:59:58 +0000',
          '29/Feb/2024:23:59:59 +0000',
          '01/Mar/2024:00:00:00 +0000',
        ]);
        const times = json.lines.map((line) => JSON.parse(line).time);
        assert.deepEqual(times, [
          '2024-02-29T23:59:58.007Z',
          '2024-02-29T23:59:58.092Z',
          '2024-02-29T23:59:59.000Z',
          '2024-03-01T00:00:00.001Z',
        ]);
      } finally {
        mock.timers.reset();
      }
    });
  });

  describe('misuse', () => {
    it('refuses an unknown format or a stream without write() when the site is built', () => {
      assert.throws(
        () => logging({ format: 'apache' as never }),
        /format must be 'common', 'combined' or 'json'/,
      );
      assert.throws(() => logging({ stream: {} as never }), /stream must have a write\(text\) method/);
    });

    it('says what to do when the context has no onClose (no tsgi scope)', () => {
      const app = logging({ stream: sink().stream })(site);
      assert.throws(
        () => app(new Request('http://127.0.0.1/'), {} as never),
        /run the application through createHandler\(\)/,
      );
    });
  });
});
