import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createGunzip, gunzipSync } from 'node:zlib';
import { gzip, isCompressible } from '../../middleware/index.ts';
import { RequestScope } from '../../src/host.ts';
import {
  type Application,
  createHandler,
  FastResponse,
  type RequestFinishedEvent,
  type RunningServer,
  SignalBus,
  serve,
} from '../../src/index.ts';
import { deferred, get, open } from '../fixtures/client.ts';
import { exchange } from '../fixtures/host.ts';
import { replacesResponse } from '../fixtures/middleware.ts';
import { recordingStream } from '../fixtures/streams.ts';

const encoder = new TextEncoder();
const text = (size: number): string => 'tsgi compresses text. '.repeat(Math.ceil(size / 22)).slice(0, size);
const binary = randomBytes(64 * 1024);
const accepts = { 'accept-encoding': 'gzip' };

/** A body of `parts` text chunks, handed out one per pull (a stream of unknown length). */
function chunked(parts: string[]): ReadableStream<Uint8Array> {
  let index = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (index < parts.length) controller.enqueue(encoder.encode(parts[index++]));
        else controller.close();
      },
    },
    { highWaterMark: 0 },
  );
}

/** The site every loopback test talks to: one route per situation. */
function site(sse: { first: Promise<void> | undefined }): Application {
  return (request) => {
    const url = new URL(request.url);
    const size = Number(url.searchParams.get('size') ?? 4096);
    const plain = { 'content-type': 'text/plain; charset=utf-8' };
    switch (url.pathname) {
      case '/text':
        return new Response(text(size), { headers: plain });
      case '/json':
        return Response.json({
          items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })),
        });
      case '/stream':
        return new Response(chunked(Array.from({ length: 50 }, (_, i) => `line ${i}: ${text(500)}\n`)), {
          headers: plain,
        });
      case '/bytes':
        return new Response(encoder.encode(text(size)), { headers: plain });
      case '/binary':
        return new Response(binary, { headers: { 'content-type': 'application/wasm' } });
      case '/sse': {
        const first = sse.first;
        let step = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (step === 0) controller.enqueue(encoder.encode('data: first\n\n'));
            else if (step === 1) {
              await first; // the second event waits until the client has decoded the first
              controller.enqueue(encoder.encode('data: second\n\n'));
            } else controller.close();
            step++;
          },
        });
        return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
      }
      case '/already-encoded':
        return new Response(text(size), { headers: { ...plain, 'content-encoding': 'br' } });
      case '/identity-encoded':
        return new Response(text(size), { headers: { ...plain, 'content-encoding': 'identity' } });
      case '/no-transform':
        return new Response(text(size), { headers: { ...plain, 'cache-control': 'public, no-transform' } });
      case '/partial':
        return new Response(text(size), {
          status: 206,
          headers: { ...plain, 'content-range': `bytes 0-${size - 1}/${size * 2}` },
        });
      case '/no-content':
        return new Response(null, { status: 204 });
      case '/not-modified':
        return new Response(null, { status: 304, headers: { etag: '"v1"' } });
      case '/no-body':
        return new Response(null, { status: 200, headers: plain });
      case '/image':
        return new Response(binary, { headers: { 'content-type': 'image/png' } });
      case '/untyped':
        return new Response(chunked([text(size)]));
      case '/declared-small':
        return new Response(chunked([text(100)]), { headers: { ...plain, 'content-length': '100' } });
      case '/etag':
        return new Response(text(size), { headers: { ...plain, etag: '"abc"', vary: 'Origin' } });
      case '/weak-etag':
        return new Response(text(size), { headers: { ...plain, etag: 'W/"abc"', vary: 'accept-encoding' } });
      default:
        return new Response('not found', { status: 404 });
    }
  };
}

describe('gzip()', () => {
  let server: RunningServer;
  const sse: { first: Promise<void> | undefined } = { first: undefined };
  before(async () => {
    server = await serve(createHandler(site(sse), { middleware: [gzip()], signals: new SignalBus() }), {
      port: 0,
    });
  });
  after(() => server.close());
  const url = (path: string): string => `${server.url}${path}`;

  describe('when the client accepts gzip', () => {
    it('compresses a large text body, and it gunzips to the input', async () => {
      const response = await get(url('/text?size=20000'), { headers: accepts });
      assert.equal(response.status, 200);
      assert.equal(response.headers['content-encoding'], 'gzip');
      assert.equal(response.headers.vary, 'Accept-Encoding');
      assert.ok(response.body.length < 20000 / 4);
      assert.equal(gunzipSync(response.body).toString(), text(20000));
    });

    it('gives a compressed string body its compressed Content-Length', async () => {
      const response = await get(url('/text?size=5000'), { headers: accepts });
      assert.equal(response.headers['content-length'], String(response.body.length));
    });

    it('compresses a bytes body whole, with its compressed Content-Length', async () => {
      const response = await get(url('/bytes?size=30000'), { headers: accepts });
      assert.equal(response.headers['content-encoding'], 'gzip');
      assert.equal(response.headers['content-length'], String(response.body.length));
      assert.equal(response.headers['transfer-encoding'], undefined);
      assert.equal(gunzipSync(response.body).toString(), text(30000));
    });

    it('compresses a 100 KB string body in one piece, the same bytes every time', async () => {
      const first = await get(url('/text?size=100000'), { headers: accepts });
      const second = await get(url('/text?size=100000'), { headers: accepts });
      assert.equal(first.headers['content-length'], String(first.body.length));
      assert.deepEqual(first.body, second.body);
      assert.equal(gunzipSync(first.body).toString(), text(100000));
    });

    it('compresses JSON', async () => {
      const response = await get(url('/json'), { headers: accepts });
      assert.equal(response.headers['content-encoding'], 'gzip');
      assert.equal(JSON.parse(gunzipSync(response.body).toString()).items.length, 200);
    });

    it('compresses a streamed body of unknown length, without Content-Length', async () => {
      const response = await get(url('/stream'), { headers: accepts });
      assert.equal(response.headers['content-encoding'], 'gzip');
      assert.equal(response.headers['content-length'], undefined);
      const expected = Array.from({ length: 50 }, (_, i) => `line ${i}: ${text(500)}\n`).join('');
      assert.equal(gunzipSync(response.body).toString(), expected);
    });

    it('compresses binary bytes of a compressible type, and they gunzip to the same bytes', async () => {
      const response = await get(url('/binary'), { headers: accepts });
      assert.equal(response.headers['content-encoding'], 'gzip');
      assert.deepEqual(gunzipSync(response.body), binary);
    });

    it('turns a strong ETag weak and appends to an existing Vary', async () => {
      const response = await get(url('/etag'), { headers: accepts });
      assert.equal(response.headers['content-encoding'], 'gzip');
      assert.equal(response.headers.etag, 'W/"abc"');
      assert.equal(response.headers.vary, 'Origin, Accept-Encoding');
    });

    it('keeps a weak ETag and does not repeat Accept-Encoding in Vary', async () => {
      const response = await get(url('/weak-etag'), { headers: accepts });
      assert.equal(response.headers['content-encoding'], 'gzip');
      assert.equal(response.headers.etag, 'W/"abc"');
      assert.equal(response.headers.vary, 'accept-encoding');
    });

    it('replaces Content-Encoding: identity', async () => {
      const response = await get(url('/identity-encoded'), { headers: accepts });
      assert.equal(response.headers['content-encoding'], 'gzip');
      assert.equal(gunzipSync(response.body).toString(), text(4096));
    });

    it('flushes every event of an event stream at once, before the stream ends', {
      timeout: 5000,
    }, async () => {
      const released = deferred();
      sse.first = released.promise;
      const { res } = await open(url('/sse'), { headers: accepts });
      assert.equal(res.headers['content-encoding'], 'gzip');
      const gunzip = createGunzip();
      res.pipe(gunzip);
      let decoded = '';
      const firstEvent = new Promise<void>((resolve) => {
        gunzip.on('data', (data: Buffer) => {
          decoded += data.toString();
          if (decoded.includes('\n\n')) resolve();
        });
      });
      // The source holds the second event back until the first is here: without a flush per
      // chunk, zlib would keep the first event and this would never resolve.
      await firstEvent;
      assert.equal(decoded, 'data: first\n\n');
      released.resolve();
      await new Promise((resolve) => gunzip.on('end', resolve));
      assert.equal(decoded, 'data: first\n\ndata: second\n\n');
      sse.first = undefined;
    });
  });

  describe('leaves the response alone', () => {
    const untouched = async (
      path: string,
      headers: Record<string, string> = accepts,
      method = 'GET',
    ): Promise<Awaited<ReturnType<typeof get>>> => {
      const response = await get(url(path), { headers, method });
      assert.equal(response.headers['content-encoding'] === 'gzip', false, `${path} was compressed`);
      return response;
    };

    it('when it is already encoded', async () => {
      const response = await untouched('/already-encoded');
      assert.equal(response.headers['content-encoding'], 'br');
      assert.equal(response.body.toString(), text(4096));
      assert.equal(response.headers.vary, undefined);
    });

    it('when Cache-Control says no-transform', async () => {
      const response = await untouched('/no-transform');
      assert.equal(response.body.toString(), text(4096));
      assert.equal(response.headers.vary, undefined);
    });

    it('when it is a HEAD request, but says it varies as the GET would', async () => {
      const response = await untouched('/text?size=5000', accepts, 'HEAD');
      assert.equal(response.body.length, 0);
      assert.equal(response.headers.vary, 'Accept-Encoding');
    });

    it('when it is partial content (206)', async () => {
      const response = await untouched('/partial');
      assert.equal(response.status, 206);
      assert.equal(response.body.toString(), text(4096));
    });

    it('when it has no content (204)', async () => {
      assert.equal((await untouched('/no-content')).status, 204);
    });

    it('when it is not modified (304)', async () => {
      const response = await untouched('/not-modified');
      assert.equal(response.status, 304);
      assert.equal(response.headers.vary, undefined);
    });

    it('when it has no body', async () => {
      const response = await untouched('/no-body');
      assert.equal(response.body.length, 0);
    });

    it('when it is below the threshold (a string body)', async () => {
      const response = await untouched('/text?size=1000');
      assert.equal(response.body.toString(), text(1000));
    });

    it('when it is below the threshold (judged from Content-Length)', async () => {
      const response = await untouched('/declared-small');
      assert.equal(response.body.toString(), text(100));
      assert.equal(response.headers.vary, undefined);
    });

    it('when its type is not compressible (an image)', async () => {
      const response = await untouched('/image');
      assert.deepEqual(response.body, binary);
      assert.equal(response.headers.vary, undefined);
    });

    it('when it has no Content-Type', async () => {
      await untouched('/untyped');
    });

    it('when the client sent no Accept-Encoding, but says it varies', async () => {
      const response = await untouched('/text?size=5000', {});
      assert.equal(response.body.toString(), text(5000));
      assert.equal(response.headers.vary, 'Accept-Encoding');
    });

    it('when the client refuses gzip (gzip;q=0), but says it varies', async () => {
      const response = await untouched('/text?size=5000', { 'accept-encoding': 'gzip;q=0, br' });
      assert.equal(response.headers.vary, 'Accept-Encoding');
    });

    it('when Accept-Encoding is malformed: identity, never an error', async () => {
      for (const header of ['gzip;q=abc', 'gzip;q=2', 'gz ip', 'gzip;level=9', ';q=1', 'gzip;q=']) {
        const response = await untouched('/text?size=5000', { 'accept-encoding': header });
        assert.equal(response.status, 200, header);
        assert.equal(response.body.toString(), text(5000), header);
      }
    });
  });

  describe('when the client leaves during a compressed stream', () => {
    it('cancels the source, and request_finished fires once as aborted', async () => {
      const bus = new SignalBus();
      const finished: RequestFinishedEvent[] = [];
      const over = new Promise<void>((resolve) => {
        bus.connect('request_finished', (event) => {
          finished.push(event);
          resolve();
        });
      });
      const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
      const app = () => new Response(source.stream, { headers: { 'content-type': 'text/plain' } });
      const endless = await serve(createHandler(app, { middleware: [gzip()], signals: bus }), { port: 0 });
      try {
        const { req, res } = await open(`${endless.url}/`, { headers: accepts });
        assert.equal(res.headers['content-encoding'], 'gzip');
        await new Promise((resolve) => res.once('data', resolve));
        req.destroy();
        await over;
        assert.equal(source.cancelled, true);
        assert.equal(finished.length, 1);
        assert.equal(finished[0]!.outcome, 'aborted');
      } finally {
        await endless.close();
      }
      assert.equal(finished.length, 1);
    });
  });
});

describe('gzip() in-process', () => {
  const run = (app: Application, options = {}, headers: HeadersInit = accepts) =>
    gzip(options)(app)(new Request('http://127.0.0.1/', { headers }), undefined as never);

  it('cancelling the compressed body cancels the inner body', async () => {
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const response = await run(
      () => new Response(source.stream, { headers: { 'content-type': 'text/plain' } }),
    );
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel('client left');
    assert.equal(source.cancelled, true);
    assert.equal(source.cancelReason, 'client left');
  });

  it('a compressed body that an outer layer drops is cancelled with its source when the request ends', async () => {
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const bus = new SignalBus();
    let finished = 0;
    bus.connect('request_finished', () => {
      finished++;
    });
    const app = () => new Response(source.stream, { headers: { 'content-type': 'text/plain' } });
    const handler = createHandler(app, { middleware: [replacesResponse(), gzip()], signals: bus });
    const { text: body, info } = await exchange(
      handler,
      new Request('http://127.0.0.1/', { headers: accepts }),
    );
    assert.equal(body, 'replaced');
    assert.equal(info.outcome, 'completed');
    assert.equal(source.cancelled, true);
    assert.equal(finished, 1);
  });

  it('an error in the inner body errors the compressed body', async () => {
    const source = recordingStream({ chunks: 10, failAt: 2 });
    const response = await run(
      () => new Response(source.stream, { headers: { 'content-type': 'text/plain' } }),
    );
    await assert.rejects(response.arrayBuffer(), /failed at chunk 2/);
  });

  it('a source that fails before the client reads fails the compressed body, nothing more', async () => {
    let pulls = 0;
    const source = new ReadableStream(
      {
        pull(controller) {
          pulls++;
          controller.error(new Error('early failure'));
        },
      },
      { highWaterMark: 0 },
    );
    const response = await run(() => new Response(source, { headers: { 'content-type': 'text/plain' } }));
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pulls, 0, 'the source was read before the client asked');
    await assert.rejects(response.arrayBuffer(), /early failure/);
  });

  it('reads the source only as fast as the compressed body is read (backpressure)', async () => {
    let pulled = 0;
    const source = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulled += 16 * 1024;
          controller.enqueue(randomBytes(16 * 1024)); // incompressible: zlib's buffers fill up
        },
      },
      { highWaterMark: 0 },
    );
    const response = await run(() => new Response(source, { headers: { 'content-type': 'text/plain' } }));
    const reader = response.body!.getReader();
    let read = 0;
    for (let i = 0; i < 4; i++) read += (await reader.read()).value!.byteLength;
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    // What was pulled but not read waits in zlib's input and output buffers (16 KiB each) and in
    // the chunk being written: bounded, whatever the source could give.
    assert.ok(pulled - read <= 64 * 1024, `pulled ${pulled} bytes, read ${read}`);
    await reader.cancel();
  });

  it('compresses at the given level', async () => {
    const body = text(50_000);
    const app = () => new Response(chunked([body]), { headers: { 'content-type': 'text/plain' } });
    const stored = Buffer.from(await (await run(app, { level: 0 })).arrayBuffer());
    const best = Buffer.from(await (await run(app, { level: 9 })).arrayBuffer());
    assert.ok(stored.length > body.length, 'level 0 stores');
    assert.ok(best.length < body.length / 10, 'level 9 compresses');
    assert.equal(gunzipSync(stored).toString(), body);
    assert.equal(gunzipSync(best).toString(), body);
  });

  it('lets filter decide which types are worth it', async () => {
    const png = () => new Response(binary, { headers: { 'content-type': 'image/png' } });
    assert.equal((await run(png, { filter: () => true })).headers.get('content-encoding'), 'gzip');
    const page = () => new Response(text(5000), { headers: { 'content-type': 'text/html' } });
    assert.equal((await run(page, { filter: () => false })).headers.get('content-encoding'), null);
  });

  it('honours the threshold option', async () => {
    // A FastResponse says its body is fixed data, so gzip() can measure it (a runtime's own Response
    // says so only through a host's scope; outside one its body counts as a stream of unknown size).
    const small = () =>
      new FastResponse(text(100), { headers: { 'content-type': 'text/plain' } }) as unknown as Response;
    assert.equal((await run(small, { threshold: 50 })).headers.get('content-encoding'), 'gzip');
    assert.equal((await run(small)).headers.get('content-encoding'), null);
  });

  it('compresses a runtime’s own Response of unknown size outside a host scope, and measures it inside one', async () => {
    const small = () => new Response(text(100), { headers: { 'content-type': 'text/plain' } });
    assert.equal((await run(small)).headers.get('content-encoding'), 'gzip');
    const scope = new RequestScope({ fixedBody: () => true });
    const measured = await gzip()(small)(
      new Request('http://127.0.0.1/', { headers: accepts }),
      scope.context,
    );
    assert.equal(measured.headers.get('content-encoding'), null);
    assert.equal(await measured.text(), text(100));
  });

  it('compresses fixed data that only reading gives (a Blob body the host calls fixed)', async () => {
    const blob = () =>
      new Response(new Blob([text(5000)]), { headers: { 'content-type': 'text/plain' } }) as Response;
    const scope = new RequestScope({ fixedBody: () => true });
    const response = await gzip()(blob)(
      new Request('http://127.0.0.1/', { headers: accepts }),
      scope.context,
    );
    assert.equal(response.headers.get('content-encoding'), 'gzip');
    const compressed = Buffer.from(await response.arrayBuffer());
    assert.equal(response.headers.get('content-length'), String(compressed.length));
    assert.equal(gunzipSync(compressed).toString(), text(5000));
  });

  it('adds Vary to a response whose headers are immutable (a fetch() response) on a copy', async () => {
    const fetched = await fetch(`data:text/plain,${text(2000)}`);
    assert.throws(() => fetched.headers.set('x', 'y'), TypeError);
    const response = await run(() => fetched, {}, {});
    assert.notEqual(response, fetched);
    assert.equal(response.headers.get('vary'), 'Accept-Encoding');
    assert.equal(await response.text(), text(2000));
  });

  it('refuses bad options when the site is built', () => {
    assert.throws(() => gzip({ threshold: -1 }), TypeError);
    assert.throws(() => gzip({ level: 10 }), RangeError);
    assert.throws(() => gzip({ filter: 'text' as never }), TypeError);
  });
});

describe('gzip() when something inside throws what is not an Error', () => {
  /** Collects unhandled rejections while `run` runs, and a few turns after. */
  async function unhandledDuring(run: () => Promise<void>): Promise<unknown[]> {
    const seen: unknown[] = [];
    const record = (reason: unknown): void => {
      seen.push(reason);
    };
    process.on('unhandledRejection', record);
    try {
      await run();
      for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', record);
    }
    return seen;
  }

  const thrown: [string, () => unknown][] = [
    ['a null-prototype object', () => Object.create(null)],
    ['a string', () => 'plain string'],
  ];

  for (const [name, make] of thrown) {
    it(`a layer throwing ${name} gets a 500, and request_finished fires once with it`, async () => {
      const value = make();
      const bus = new SignalBus();
      const reported: unknown[] = [];
      bus.onError = (error) => {
        reported.push(error);
      };
      const finished: RequestFinishedEvent[] = [];
      bus.connect('request_finished', (event) => {
        finished.push(event);
      });
      const sync: Application = () => {
        throw value;
      };
      const async: Application = async () => {
        throw value;
      };
      const unhandled = await unhandledDuring(async () => {
        for (const app of [sync, async]) {
          const handler = createHandler(app, { middleware: [gzip()], signals: bus });
          const { status, info } = await exchange(
            handler,
            new Request('http://127.0.0.1/', { headers: accepts }),
          );
          assert.equal(status, 500);
          assert.equal(info.outcome, 'completed');
        }
      });
      assert.deepEqual(unhandled, []);
      assert.equal(finished.length, 2);
      assert.equal(finished[0]!.error, value);
      assert.equal(finished[1]!.error, value);
    });

    it(`a stream body failing with ${name} fails the compressed body with an Error that keeps it as cause`, async () => {
      const value = make();
      const source = () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              controller.error(value);
            },
          }),
          { headers: { 'content-type': 'text/plain' } },
        );
      const unhandled = await unhandledDuring(async () => {
        const response = await gzip()(source)(
          new Request('http://127.0.0.1/', { headers: accepts }),
          undefined as never,
        );
        assert.equal(response.headers.get('content-encoding'), 'gzip');
        await assert.rejects(response.arrayBuffer(), (error: unknown) => {
          assert.ok(error instanceof Error);
          assert.equal(error.cause, value);
          assert.match(error.message, /non-Error value/);
          return true;
        });
      });
      assert.deepEqual(unhandled, []);
    });

    it(`over a real connection, a body failing with ${name} after the head cuts the response, finished as errored`, async () => {
      const value = make();
      const bus = new SignalBus();
      bus.onError = () => {};
      const over = new Promise<RequestFinishedEvent>((resolve) => {
        bus.connect('request_finished', resolve);
      });
      const firstEventOut = deferred();
      let step = 0;
      const app = () =>
        new Response(
          new ReadableStream<Uint8Array>({
            async pull(controller) {
              if (step++ === 0) controller.enqueue(encoder.encode('data: first\n\n'));
              else {
                await firstEventOut.promise; // fail only once the client has the head and an event
                controller.error(value);
              }
            },
          }),
          // An event stream is flushed per chunk, so the first event goes out on its own.
          { headers: { 'content-type': 'text/event-stream' } },
        );
      const unhandled = await unhandledDuring(async () => {
        const server = await serve(createHandler(app, { middleware: [gzip()], signals: bus }), { port: 0 });
        try {
          const { res } = await open(`${server.url}/`, { headers: accepts });
          assert.equal(res.headers['content-encoding'], 'gzip');
          res.on('error', () => {}); // the cut connection
          await new Promise((resolve) => res.once('data', resolve));
          firstEventOut.resolve();
          await new Promise((resolve) => res.once('close', resolve));
          assert.equal(res.complete, false, 'the response looked complete');
          const event = await over;
          assert.equal(event.outcome, 'errored');
          assert.ok(event.error instanceof Error && event.error.cause === value, 'the error keeps the value');
        } finally {
          await server.close();
        }
      });
      assert.deepEqual(unhandled, []);
    });
  }
});

describe('isCompressible()', () => {
  const typed = (type: string) => new Response('', { headers: { 'content-type': type } });
  for (const type of [
    'text/html; charset=utf-8',
    'text/event-stream',
    'application/json',
    'application/problem+json',
    'application/javascript',
    'application/xml',
    'image/svg+xml',
    'TEXT/CSS',
  ]) {
    it(`is true for ${type}`, () => assert.equal(isCompressible(typed(type)), true));
  }
  for (const type of [
    'image/png',
    'video/mp4',
    'application/zip',
    'application/octet-stream',
    'font/woff2',
  ]) {
    it(`is false for ${type}`, () => assert.equal(isCompressible(typed(type)), false));
  }
  it('is false without a Content-Type', () => {
    assert.equal(isCompressible(new Response(new Uint8Array(1))), false);
  });
});
