import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { MAX_ACCEPT_ENCODING, negotiate } from '../../middleware/accept-encoding.ts';
import { gzip } from '../../middleware/index.ts';
import { createHandler, type RunningServer, SignalBus, serve } from '../../src/index.ts';
import { get } from '../fixtures/client.ts';

/**
 * A stand-in for a header string that counts how often each character is read, and fails the test
 * if the parser uses anything but `length` and `charCodeAt` (a `split`, a regular expression, a
 * `slice` would each read characters it does not count).
 */
function counted(header: string): { header: string; reads: () => number; mostReadsOfOne: () => number } {
  const perIndex = new Uint32Array(header.length);
  let reads = 0;
  const target = {
    length: header.length,
    charCodeAt(index: number): number {
      reads++;
      perIndex[index]!++;
      return header.charCodeAt(index);
    },
  };
  const proxy = new Proxy(target, {
    get(object, key) {
      if (key === 'length' || key === 'charCodeAt') return object[key];
      throw new Error(`negotiate() used header.${String(key)}: only length and charCodeAt are counted`);
    },
  });
  return {
    header: proxy as unknown as string,
    reads: () => reads,
    mostReadsOfOne: () => perIndex.reduce((most, count) => Math.max(most, count), 0),
  };
}

/** `element` repeated, comma-separated, up to `size` characters, then `tail`. */
function filled(element: string, tail: string, size = MAX_ACCEPT_ENCODING): string {
  const room = size - tail.length;
  let header = '';
  while (header.length + element.length + 2 <= room) header += `${element}, `;
  return (header + tail).padStart(size, ' ');
}

describe('negotiate(): Accept-Encoding, gzip or identity', () => {
  const cases: [string | null, 'gzip' | 'identity', string?][] = [
    [null, 'identity', 'no header'],
    ['', 'identity', 'empty'],
    ['   ', 'identity', 'only whitespace'],
    [',, ,', 'identity', 'only empty elements'],
    ['gzip', 'gzip'],
    ['GZIP', 'gzip', 'codings are case-insensitive'],
    ['GZip;Q=0.5', 'gzip', 'so is q'],
    ['x-gzip', 'gzip', 'x-gzip is gzip (RFC 9110 §8.4.1.3)'],
    ['X-GZIP;q=1', 'gzip'],
    ['gzip, deflate, br, zstd', 'gzip', 'what browsers send'],
    ['  br ,\tgzip  ', 'gzip', 'spaces and tabs around elements'],
    ['gzip ; q=0.5', 'gzip', 'whitespace before and after the semicolon'],
    ['gzip;q=0.5 ,br', 'gzip', 'whitespace after the weight'],
    ['gzip,,deflate,', 'gzip', 'empty elements are skipped'],
    ['deflate', 'identity', 'gzip not listed'],
    ['br;q=1.0, gzip;q=0.8', 'gzip', 'an unlisted identity loses to any gzip weight above 0'],
    ['gzip;q=0', 'identity', 'gzip refused'],
    ['gzip;q=0.', 'identity', '"0." is a valid zero'],
    ['gzip; q=0.000', 'identity'],
    ['gzip;q=0.001', 'gzip', 'the smallest weight above 0'],
    ['gzip;q=1.', 'gzip'],
    ['gzip;q=1.000', 'gzip'],
    ['gzip;q=0.5, identity', 'identity', 'identity wanted more'],
    ['gzip;q=0.5, identity;q=0.5', 'gzip', 'a tie goes to gzip'],
    ['gzip;q=0.4, identity;q=0.5', 'identity'],
    ['identity', 'identity'],
    ['identity;q=0', 'identity', 'nothing acceptable: still identity, never an error'],
    ['*', 'gzip', '* stands for gzip'],
    ['*;q=0', 'identity', '* refused, gzip unlisted'],
    ['identity;q=0, *;q=0', 'identity', 'everything refused: identity, never an error'],
    ['*;q=0, gzip', 'gzip', 'a listed coding overrides *'],
    ['gzip;q=0, *', 'identity', 'a listed refusal overrides *'],
    ['*;q=0.5, identity;q=0', 'gzip'],
    ['*;q=0.5, gzip;q=0.3', 'identity', '* gives identity its weight too'],
    ['br, *;q=0.1', 'gzip'],
    ['gzip, gzip;q=0', 'identity', 'a coding listed twice counts at its lowest weight'],
    ['gzip;q=0, gzip', 'identity'],
    ['gzip;q=0.2, gzip;q=0.9', 'gzip'],
    ['gzip, x-gzip;q=0', 'identity', 'x-gzip is the same coding'],
    ['identity;q=0, identity', 'identity'],
    ['gzip;q=1.001', 'identity', 'a weight above 1 cannot be read: a refusal'],
    ['gzip;q=1.5', 'identity'],
    ['gzip;q=2', 'identity'],
    ['gzip;q=-1', 'identity'],
    ['gzip;q=0.0001', 'identity', 'more than three decimals'],
    ['gzip;q=.5', 'identity'],
    ['gzip;q=abc', 'identity'],
    ['gzip;q=', 'identity'],
    ['gzip;q', 'identity'],
    ['gzip;', 'identity', 'a semicolon without a weight'],
    ['gzip;q = 0.5', 'identity', 'no whitespace around ='],
    ['gzip;level=1', 'identity', 'another parameter cannot be read as a weight'],
    ['gzip;q=0.5;q=1', 'identity'],
    ['br;q=abc, gzip', 'gzip', 'an unreadable weight refuses its own coding only'],
    ['identity;q=x, gzip;q=0.1', 'gzip'],
    ['g zip', 'identity', 'not a token: the element names nothing'],
    ['gzip\u0000', 'identity'],
    ['gzip\u00e9, br', 'identity'],
    [';q=1', 'identity'],
    ['"gzip"', 'identity'],
    ['gzi, gzipp, xgzip, gzip-x', 'identity', 'names that only look like gzip'],
    ['br;x="a, gzip, b"', 'identity', 'a comma in a quoted string does not end the element'],
    ['br;x="a\\", gzip, b", deflate', 'identity', 'nor an escaped quote'],
    ['br;x="a, b", gzip', 'gzip', 'the element after the quoted string counts'],
    ['br;x="unterminated, gzip', 'identity'],
  ];
  for (const [header, expected, why] of cases) {
    it(`${JSON.stringify(header)} → ${expected}${why ? ` (${why})` : ''}`, () => {
      assert.equal(negotiate(header), expected);
    });
  }
});

describe('negotiate() on hostile headers: bounded by counting, not by a clock', () => {
  const hostile: [string, string, 'gzip' | 'identity'][] = [
    ['2 000 short codings, gzip last', filled('a;q=0.5', 'gzip'), 'gzip'],
    ['2 000 short codings, gzip refused last', filled('a;q=0.5', 'gzip;q=0'), 'identity'],
    ['one 16 KB token, then gzip', `${'x'.repeat(MAX_ACCEPT_ENCODING - 6)}, gzip`, 'gzip'],
    ['a 16 KB coding that starts as gzip', `gzip${'p'.repeat(MAX_ACCEPT_ENCODING - 4)}`, 'identity'],
    [
      'only whitespace and commas, then gzip',
      `${' ,\t'.repeat(5000)}gzip`.padStart(MAX_ACCEPT_ENCODING),
      'gzip',
    ],
    ['a thousand q parameters on one element', `gzip${';q=1'.repeat(4000)}`, 'identity'],
    ['weights with too many decimals', filled('gzip;q=0.00001', 'br'), 'identity'],
    ['an unterminated quoted string', `br;x="${'\\",'.repeat(5000)}, gzip`, 'identity'],
    ['every element refused but *', filled('gzip;q=0', '*'), 'identity'],
    ['non-ASCII everywhere', `${'é€😀,'.repeat(3000)}gzip`, 'gzip'],
  ];
  for (const [name, header, expected] of hostile) {
    it(`${name} (${header.length} characters): answered right, each character read once`, () => {
      assert.ok(header.length <= MAX_ACCEPT_ENCODING, `${header.length} characters`);
      assert.equal(negotiate(header), expected);
      const probe = counted(header);
      assert.equal(negotiate(probe.header), expected);
      assert.ok(probe.reads() <= header.length, `${probe.reads()} reads for ${header.length} characters`);
      assert.equal(probe.mostReadsOfOne(), 1);
    });
  }

  it('reads every character of an ordinary header exactly once, and nothing else', () => {
    const probe = counted('gzip, deflate, br, zstd');
    assert.equal(negotiate(probe.header), 'gzip');
    assert.equal(probe.reads(), 'gzip, deflate, br, zstd'.length);
  });

  it(`reads nothing of a header past the cap (${MAX_ACCEPT_ENCODING} characters): identity`, () => {
    const probe = counted(`gzip, ${'a'.repeat(MAX_ACCEPT_ENCODING)}`);
    assert.equal(negotiate(probe.header), 'identity');
    assert.equal(probe.reads(), 0);
    const atTheCap = `${' '.repeat(MAX_ACCEPT_ENCODING - 4)}gzip`;
    assert.equal(negotiate(atTheCap), 'gzip', 'a header of exactly the cap is read');
    assert.equal(negotiate(` ${atTheCap}`), 'identity', 'one more character is not');
  });
});

describe('gzip() with a hostile Accept-Encoding over a real connection', () => {
  let server: RunningServer;
  const body = 'tsgi compresses text. '.repeat(500);
  before(async () => {
    const app = () => new Response(body, { headers: { 'content-type': 'text/plain' } });
    server = await serve(createHandler(app, { middleware: [gzip()], signals: new SignalBus() }), {
      port: 0,
      host: '127.0.0.1',
    });
  });
  after(() => server.close());

  // Node refuses a request whose headers pass 16 KiB in all (431), so these stay a little below.
  const size = 15 * 1024;

  it('compresses when gzip comes after 15 KB of junk elements', async () => {
    const response = await get(server.url, {
      headers: { 'accept-encoding': filled('a;q=0.5', 'gzip', size) },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(response.body).toString(), body);
  });

  it('honours a refusal at the end of 15 KB of elements', async () => {
    const header = filled('gzip;q=1', 'gzip;q=0', size);
    const response = await get(server.url, { headers: { 'accept-encoding': header } });
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-encoding'], undefined);
    assert.equal(response.headers.vary, 'Accept-Encoding');
    assert.equal(response.body.toString(), body);
  });
});
