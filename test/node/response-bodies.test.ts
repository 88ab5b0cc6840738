/**
 * What the client receives for every kind of response body, over real sockets: each BodyInit kind
 * (string, bytes, ArrayBuffer, DataView, Blob, URLSearchParams, FormData, ReadableStream, async
 * iterable) in each kind of Response the adapter is handed — tsgi's FastResponse (the global while
 * serve() runs), undici's own with `fastResponse: false`, and undici's made with the original class
 * while the global is swapped — and native responses in every state: a clone read (Hono's etag
 * middleware does it), the body partly or fully read, or locked.
 *
 * Bytes must be exact, a body of known size goes out with its Content-Length, and a body that cannot
 * be sent (read already, or locked) is a 500 before anything else was sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Application, createHandler, type RunningServer, SignalBus, serve } from '../../src/index.ts';
import { FastResponse, GlobalResponse } from '../../src/node/fast-response.ts';
import { get, type RawResponse } from '../fixtures/client.ts';

const payload = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 251);
const text = 'héllo wörld, '.repeat(2000);
const encoder = new TextEncoder();

interface Kind {
  make(): BodyInit;
  /** The bytes the client must receive. */
  bytes: Uint8Array;
  /** True when the size is known up front, so the response must carry a Content-Length. */
  sized: boolean;
  /** The Content-Type undici gives the body, if any. */
  type?: string;
}

function twoChunks(): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === 2) controller.close();
      else controller.enqueue(payload.subarray(sent++ * 50_000, sent * 50_000));
    },
  });
}

const kinds: Record<string, Kind> = {
  string: { make: () => text, bytes: encoder.encode(text), sized: true, type: 'text/plain;charset=UTF-8' },
  Uint8Array: { make: () => payload.slice(), bytes: payload, sized: true },
  ArrayBuffer: { make: () => payload.slice().buffer, bytes: payload, sized: true },
  DataView: {
    make: () => new DataView(payload.slice().buffer, 10, 1000),
    bytes: payload.subarray(10, 1010),
    sized: true,
  },
  Blob: {
    make: () =>
      new Blob([payload.subarray(0, 60_000), payload.subarray(60_000)], { type: 'application/x-test' }),
    bytes: payload,
    sized: true,
    type: 'application/x-test',
  },
  URLSearchParams: {
    make: () => new URLSearchParams({ a: '1', b: 'zwei drei', c: 'ü' }),
    bytes: encoder.encode('a=1&b=zwei+drei&c=%C3%BC'),
    sized: true,
    type: 'application/x-www-form-urlencoded;charset=UTF-8',
  },
  ReadableStream: { make: twoChunks, bytes: payload, sized: false },
  'async iterable': {
    make: () =>
      (async function* chunks() {
        yield payload.subarray(0, 30_000);
        yield payload.subarray(30_000);
      })() as unknown as BodyInit,
    bytes: payload,
    sized: false,
  },
};

function form(): FormData {
  const data = new FormData();
  data.set('name', 'tsgi');
  data.set('file', new Blob([payload.subarray(0, 5000)], { type: 'application/octet-stream' }), 'p.bin');
  return data;
}

type Make = (body: BodyInit | null, init?: ResponseInit) => Response;

/** The three ways a response reaches the adapter. */
const modes: { name: string; fastResponse: boolean; make: Make }[] = [
  {
    name: 'a FastResponse (serve() swaps the global)',
    fastResponse: true,
    make: (b, i) => new Response(b, i),
  },
  {
    name: "undici's Response (fastResponse: false)",
    fastResponse: false,
    make: (b, i) => new Response(b, i),
  },
  {
    name: "undici's Response made with the original class",
    fastResponse: true,
    make: (b, i) => new GlobalResponse(b, i),
  },
];

/** Serves `route(path)` for every request; every error reported (a 500's too) goes to `errors`. */
async function start(
  fastResponse: boolean,
  route: (path: string) => Response | Promise<Response>,
): Promise<{ server: RunningServer; errors: unknown[] }> {
  const errors: unknown[] = [];
  const signals = new SignalBus({ onError: (error) => errors.push(error) });
  const app: Application = (request) => route(new URL(request.url).pathname.slice(1));
  const server = await serve(createHandler(app, { signals }), { port: 0, fastResponse });
  return { server, errors };
}

function assertBody(response: RawResponse, kind: Kind): void {
  assert.equal(response.status, 200);
  assert.equal(response.body.length, kind.bytes.length, 'body length');
  assert.ok(Buffer.from(kind.bytes).equals(response.body), 'body bytes');
  if (kind.sized) {
    assert.equal(response.headers['content-length'], String(kind.bytes.length), 'Content-Length');
    assert.equal(response.headers['transfer-encoding'], undefined);
  } else {
    assert.equal(response.headers['transfer-encoding'], 'chunked');
  }
  if (kind.type !== undefined) assert.equal(response.headers['content-type'], kind.type);
}

for (const mode of modes) {
  describe(`every BodyInit kind, as ${mode.name}`, () => {
    let site: { server: RunningServer; errors: unknown[] };
    before(async () => {
      site = await start(mode.fastResponse, (path) => {
        if (path === 'FormData') return mode.make(form());
        if (path === 'null') return mode.make(null);
        if (path === 'check') {
          const response = mode.make('x');
          const fast = Object.getPrototypeOf(response) === FastResponse.prototype;
          return new GlobalResponse(fast ? 'fast' : 'undici');
        }
        return mode.make(kinds[decodeURIComponent(path)]!.make());
      });
    });
    after(() => site.server.close());

    it('makes the kind of Response it says', async () => {
      const expected = mode.fastResponse && mode.make !== modes[2]!.make ? 'fast' : 'undici';
      assert.equal((await get(`${site.server.url}/check`)).body.toString(), expected);
    });

    for (const [name, kind] of Object.entries(kinds)) {
      it(`sends a ${name} body exactly${kind.sized ? ', with its Content-Length' : ''}`, async () => {
        assertBody(await get(`${site.server.url}/${encodeURIComponent(name)}`), kind);
      });
    }

    it('sends a FormData body as multipart that parses back to the same entries', async () => {
      const response = await get(`${site.server.url}/FormData`);
      assert.equal(response.status, 200);
      const type = response.headers['content-type']!;
      assert.match(type, /^multipart\/form-data; boundary=/);
      if (response.headers['content-length'] !== undefined) {
        assert.equal(response.headers['content-length'], String(response.body.length));
      }
      const parsed = await new GlobalResponse(new Uint8Array(response.body), {
        headers: { 'content-type': type },
      }).formData();
      assert.equal(parsed.get('name'), 'tsgi');
      const file = parsed.get('file') as File;
      assert.equal(file.name, 'p.bin');
      assert.ok(Buffer.from(payload.subarray(0, 5000)).equals(Buffer.from(await file.arrayBuffer())));
    });

    it('sends no body, with Content-Length 0, for a null body', async () => {
      const response = await get(`${site.server.url}/null`);
      assert.equal(response.status, 200);
      assert.equal(response.headers['content-length'], '0');
      assert.equal(response.body.length, 0);
    });

    it('found nothing to report', () => {
      assert.deepEqual(site.errors, []);
    });
  });
}

/** What an application may have done to a native response before returning it. */
const states: Record<string, { make: (make: Make) => Promise<Response> | Response; sent: boolean }> = {
  // Hono's etag middleware: `const c = res.clone(); await c.arrayBuffer()`.
  'made from bytes, whose clone was read': {
    async make(make) {
      const response = make(payload.slice());
      await response.clone().arrayBuffer();
      return response;
    },
    sent: true,
  },
  'made from a string, whose clone was read': {
    async make(make) {
      const response = make(text);
      await response.clone().text();
      return response;
    },
    sent: true,
  },
  'made from a Blob, whose clone was read': {
    async make(make) {
      const response = make(new Blob([payload]));
      await response.clone().arrayBuffer();
      return response;
    },
    sent: true,
  },
  'made from bytes, partly read (a chunk taken, the lock released)': {
    async make(make) {
      const response = make(payload.slice());
      const reader = response.body!.getReader();
      await reader.read();
      reader.releaseLock();
      return response;
    },
    sent: false,
  },
  'made from a stream, partly read': {
    async make(make) {
      const response = make(twoChunks());
      const reader = response.body!.getReader();
      await reader.read();
      reader.releaseLock();
      return response;
    },
    sent: false,
  },
  'made from bytes, fully read': {
    async make(make) {
      const response = make(payload.slice());
      await response.arrayBuffer();
      return response;
    },
    sent: false,
  },
  'made from bytes, locked by a reader': {
    make(make) {
      const response = make(payload.slice());
      response.body!.getReader();
      return response;
    },
    sent: false,
  },
};

for (const mode of modes) {
  describe(`a response in any state, as ${mode.name}`, () => {
    let site: { server: RunningServer; errors: unknown[] };
    before(async () => {
      site = await start(mode.fastResponse, (path) => states[decodeURIComponent(path)]!.make(mode.make));
    });
    after(() => site.server.close());

    for (const [name, state] of Object.entries(states)) {
      const expected = name.includes('string') ? encoder.encode(text) : payload;
      if (state.sent) {
        it(`sends every byte of one ${name}`, async () => {
          const response = await get(`${site.server.url}/${encodeURIComponent(name)}`);
          assert.equal(response.status, 200);
          assert.equal(response.body.length, expected.length, 'body length');
          assert.ok(Buffer.from(expected).equals(response.body), 'body bytes');
          const length = response.headers['content-length'];
          if (length !== undefined) assert.equal(length, String(expected.length));
        });
      } else {
        it(`answers 500, before anything was sent, for one ${name}`, async () => {
          const before = site.errors.length;
          const response = await get(`${site.server.url}/${encodeURIComponent(name)}`);
          assert.equal(response.status, 500);
          assert.equal(response.body.toString(), 'Internal Server Error\n');
          const reported = site.errors.slice(before);
          assert.ok(reported.length > 0, 'the error is reported');
          for (const error of reported) assert.match(String(error), /read|locked/);
        });
      }
    }
  });
}

describe('the head of a response made with a plain header object (kept as given, no Headers made)', () => {
  const app: Application = (request) => {
    const path = new URL(request.url).pathname;
    if (path === '/json')
      return Response.json({ ok: true }, { status: 202, headers: { 'Cache-Control': 'no-store' } });
    if (path === '/changed') {
      const response = new Response('changed', { headers: { 'x-a': '1' } });
      response.headers.set('x-a', 'after');
      return response;
    }
    if (path === '/head') return new Response('not sent', { headers: { 'X-Kept': 'yes' } });
    return new Response('text', {
      status: 201,
      headers: { 'Content-Type': 'text/html', 'X-Request-Id': 'abc' },
    });
  };

  for (const fastResponse of [true, false]) {
    describe(fastResponse ? 'with FastResponse' : "with undici's Response", () => {
      let server: RunningServer;
      before(async () => {
        server = await serve(app, { port: 0, fastResponse });
      });
      after(() => server.close());

      it('sends the status, each header and the body’s own length', async () => {
        const response = await get(`${server.url}/text`);
        assert.equal(response.status, 201);
        assert.equal(response.headers['content-type'], 'text/html');
        assert.equal(response.headers['x-request-id'], 'abc');
        assert.equal(response.headers['content-length'], '4');
        assert.equal(response.body.toString(), 'text');
      });

      it('sends Response.json() with its headers and the JSON content type', async () => {
        const response = await get(`${server.url}/json`);
        assert.equal(response.status, 202);
        assert.equal(response.headers['cache-control'], 'no-store');
        assert.equal(response.headers['content-type'], 'application/json');
        assert.equal(response.body.toString(), '{"ok":true}');
      });

      it('sends what the headers say once a layer changed them', async () => {
        const response = await get(`${server.url}/changed`);
        assert.equal(response.headers['x-a'], 'after');
      });

      it('sends the head alone for HEAD, with the length of the body it would have', async () => {
        const response = await get(`${server.url}/head`, { method: 'HEAD' });
        assert.equal(response.headers['x-kept'], 'yes');
        assert.equal(response.headers['content-length'], '8');
        assert.equal(response.body.length, 0);
      });
    });
  }
});
