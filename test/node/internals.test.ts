/**
 * The Node and undici internals the adapter relies on (src/node/internals.ts): on this Node every
 * probe must find what it expects — when one fails here after a Node upgrade, the adapter has quietly
 * moved to its fallback, and this is the place that says so — and every fallback, forced, must still
 * give the client the right answer, over real sockets.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage, ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  createHandler,
  fromNodeListener,
  type RequestFinishedEvent,
  SignalBus,
  serve,
} from '../../src/index.ts';
import { FastResponse, GlobalResponse } from '../../src/node/fast-response.ts';
import {
  completesOnDetach,
  forceFallback,
  holdClose,
  hostServerOf,
  type Internal,
  lookalikeRequests,
  presetContentLength,
  probes,
  sendUnframed,
  undiciBodyLength,
  undiciFixedData,
  undiciStaticBody,
} from '../../src/node/internals.ts';
import { NodeRequest } from '../../src/node/request.ts';
import { get, rawExchange } from '../fixtures/client.ts';

const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i % 256);

/** Runs `run` with the fallback for `internal` forced, and puts the probe's finding back after. */
async function withFallback<T>(internal: Internal, run: () => Promise<T>): Promise<T> {
  const restore = forceFallback(internal);
  try {
    return await run();
  } finally {
    restore();
  }
}

describe(`the probes, on Node ${process.version}`, () => {
  for (const name of Object.keys(probes) as Internal[]) {
    it(`${name}: finds what the adapter relies on`, () => {
      const probe = probes[name];
      assert.ok(
        probe.found,
        `the ${name} probe failed on Node ${process.version} (${probe.detail}); the adapter now uses its fallback: see src/node/internals.ts`,
      );
    });
  }
});

describe("undici's body state", () => {
  it('gives the string or bytes a response was made from, the bytes as a copy', () => {
    assert.equal(undiciFixedData(new GlobalResponse('héllo')), 'héllo');
    const source = bytes.slice();
    const data = undiciFixedData(new GlobalResponse(source));
    assert.ok(data instanceof Uint8Array);
    assert.deepEqual(data, bytes);
    assert.equal(undiciFixedData(new GlobalResponse(null)), null);
  });

  it('keeps the copy whole when a clone is read afterwards (which detaches undici’s bytes)', async () => {
    const response = new GlobalResponse(bytes.slice());
    const clone = response.clone();
    const data = undiciFixedData(response)!;
    await clone.arrayBuffer();
    assert.equal(data.length, bytes.length);
    assert.deepEqual(data, bytes);
  });

  it('is in doubt about bytes whose clone was read: their length is not what undici recorded', async () => {
    const response = new GlobalResponse(bytes.slice());
    await response.clone().arrayBuffer();
    assert.equal(undiciFixedData(response), undefined);
    assert.equal(new Uint8Array(await response.arrayBuffer()).length, bytes.length, 'the stream has them');
  });

  it('gives nothing for a body read, partly read or locked', async () => {
    const read = new GlobalResponse('x');
    await read.text();
    const partly = new GlobalResponse(bytes.slice());
    const reader = partly.body!.getReader();
    await reader.read();
    reader.releaseLock();
    const locked = new GlobalResponse('x');
    locked.body!.getReader();
    for (const response of [read, partly, locked]) {
      assert.equal(undiciFixedData(response), undefined);
      assert.equal(undiciBodyLength(response), -1);
    }
  });

  it('gives the length of a Blob body, checked against its size, and no data to write whole', () => {
    const response = new GlobalResponse(new Blob([bytes]));
    assert.equal(undiciFixedData(response), undefined);
    assert.equal(undiciBodyLength(response), bytes.length);
    assert.equal(undiciBodyLength(new GlobalResponse('abc')), -1, 'only Blobs are streamed with a length');
  });

  it('says a body is fixed data for a string, bytes, a Blob, form data or no body, not for a stream', () => {
    for (const body of ['x', bytes.slice(), new Blob(['b']), new FormData(), null]) {
      assert.equal(undiciStaticBody(new GlobalResponse(body)), true);
    }
    assert.equal(undiciStaticBody(new GlobalResponse(new ReadableStream())), false);
  });

  it('knows nothing of a response that is not undici’s', () => {
    const fast = new FastResponse('x') as unknown as Response;
    assert.equal(undiciFixedData(fast), undefined);
    assert.equal(undiciBodyLength(fast), -1);
    assert.equal(undiciStaticBody(fast), false);
  });

  it('with its fallback forced, knows nothing of any response', async () => {
    await withFallback('undiciBody', async () => {
      assert.equal(undiciFixedData(new GlobalResponse('x')), undefined);
      assert.equal(undiciBodyLength(new GlobalResponse(new Blob(['b']))), -1);
      assert.equal(undiciStaticBody(new GlobalResponse('x')), false);
    });
    assert.equal(undiciFixedData(new GlobalResponse('x')), 'x', 'restored');
  });

  describe('fallback: every undici body is streamed, and arrives whole', () => {
    const bus = new SignalBus();
    const app = createHandler(
      (request) => {
        const kind = new URL(request.url).pathname;
        if (kind === '/text') return new GlobalResponse('héllo');
        if (kind === '/blob') return new GlobalResponse(new Blob([bytes]));
        return new GlobalResponse(bytes.slice());
      },
      { signals: bus },
    );
    let server: Awaited<ReturnType<typeof serve>>;
    let restore: () => void;
    before(async () => {
      restore = forceFallback('undiciBody');
      server = await serve(app, { port: 0, fastResponse: false });
    });
    after(async () => {
      await server.close();
      restore();
    });

    for (const [path, expected] of [
      ['/text', Buffer.from('héllo')],
      ['/bytes', Buffer.from(bytes)],
      ['/blob', Buffer.from(bytes)],
    ] as const) {
      it(`sends ${path} whole, chunked`, async () => {
        const response = await get(`${server.url}${path}`);
        assert.equal(response.status, 200);
        assert.ok(expected.equals(response.body));
        assert.equal(response.headers['transfer-encoding'], 'chunked');
      });
    }
  });
});

describe("ServerResponse's _contentLength", () => {
  const fake = (minor: number) =>
    new ServerResponse({ method: 'GET', httpVersionMajor: 1, httpVersionMinor: minor, headers: {} } as never);

  it('takes a fixed body’s length for HTTP/1.1, once, and not for HTTP/1.0', () => {
    const res = fake(1);
    assert.equal(presetContentLength(res, 5), true);
    assert.equal(presetContentLength(res, 6), false, 'a length is set already');
    assert.equal(presetContentLength(fake(0), 5), false);
  });

  it('with its fallback forced, takes nothing: the writer sends a header', async () => {
    await withFallback('contentLength', async () => assert.equal(presetContentLength(fake(1), 5), false));
  });

  for (const forced of [false, true]) {
    it(`frames a fixed body with its Content-Length${forced ? ', with the fallback forced' : ''}`, async () => {
      const run = async () => {
        const server = await serve(() => new Response('héllo'), { port: 0 });
        try {
          const response = await get(`${server.url}/`);
          assert.equal(response.headers['content-length'], '6');
          assert.equal(response.body.toString(), 'héllo');
          const raw = await rawExchange(server.port, 'GET / HTTP/1.0\r\nHost: x\r\n\r\n');
          assert.match(raw, /\r\ncontent-length: 6\r\n/i);
          assert.ok(raw.endsWith('\r\n\r\nhÃ©llo'), 'the whole body, over HTTP/1.0');
        } finally {
          await server.close();
        }
      };
      if (forced) await withFallback('contentLength', run);
      else await run();
    });
  }
});

describe("ServerResponse's detachSocket()", () => {
  it('is called by Node once per response, when the response is complete', async () => {
    const original = ServerResponse.prototype.detachSocket;
    let calls = 0;
    ServerResponse.prototype.detachSocket = function counted(this: ServerResponse, socket) {
      calls++;
      assert.equal(this.writableEnded, true, 'called once the response has ended');
      original.call(this, socket);
    };
    try {
      const server = await serve(() => new Response('x'), { port: 0 });
      try {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        for (let i = 0; i < 3; i++) {
          await new Promise<void>((resolve, reject) => {
            http
              .get(`${server.url}/`, { agent }, (res) => res.resume().on('end', resolve))
              .on('error', reject);
          });
        }
        agent.destroy();
      } finally {
        await server.close();
      }
    } finally {
      ServerResponse.prototype.detachSocket = original;
    }
    assert.equal(calls, 3);
  });

  it('with its fallback forced (a listener on each response), still tells completed from aborted', {
    timeout: 10_000,
  }, async () => {
    await withFallback('detachSocket', async () => {
      assert.equal(completesOnDetach(), false);
      const bus = new SignalBus();
      const finished: RequestFinishedEvent[] = [];
      const waiting: (() => void)[] = [];
      bus.connect('request_finished', (event) => {
        finished.push(event);
        waiting.shift()?.();
      });
      const nextFinished = () => new Promise<void>((resolve) => waiting.push(resolve));
      const app = createHandler(
        (request) => {
          if (new URL(request.url).pathname === '/done') return new Response('done');
          return new Response(
            new ReadableStream({
              pull(controller) {
                controller.enqueue(new TextEncoder().encode('more'));
                return new Promise(() => {}); // never ends: the client leaves
              },
            }),
          );
        },
        { signals: bus },
      );
      const server = await serve(app, { port: 0 });
      const socket = net.connect(server.port, '127.0.0.1');
      try {
        // Keep-alive: each completes while the connection stays open, so the socket's close cannot
        // be what told the exchange.
        for (let i = 0; i < 2; i++) {
          const done = nextFinished();
          socket.write('GET /done HTTP/1.1\r\nHost: x\r\n\r\n');
          await done;
        }
        socket.write('GET /forever HTTP/1.1\r\nHost: x\r\n\r\n');
        await new Promise<void>((resolve) => {
          let seen = '';
          socket.on('data', (data: Buffer) => {
            seen += data.toString('latin1');
            if (seen.includes('more')) resolve();
          });
        });
        const left = nextFinished();
        socket.destroy();
        await left;
      } finally {
        socket.destroy();
        await server.close();
      }
      assert.deepEqual(
        finished.map((event) => event.outcome),
        ['completed', 'completed', 'aborted'],
      );
    });
  });
});

describe('socket.server', () => {
  it('names the server a connection came from', async () => {
    const server = http.createServer((_req, res) => {
      const host = hostServerOf(res.socket!);
      res.end(host === server ? 'same' : 'other');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      assert.equal((await get(url)).body.toString(), 'same');
      await withFallback('socketServer', async () => assert.equal((await get(url)).body.toString(), 'other'));
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('is not taken from a socket no http.Server handed over', () => {
    const socket = new net.Socket();
    (socket as { server?: unknown }).server = { not: 'a server' };
    assert.equal(hostServerOf(socket), undefined);
    socket.destroy();
  });
});

describe('holdClose() (ServerResponse#_last)', () => {
  function response(keepAlive: boolean): ServerResponse {
    const req = { method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} };
    const res = new ServerResponse(req as IncomingMessage);
    res.shouldKeepAlive = keepAlive;
    res.writeHead(200, []);
    return res;
  }

  it('puts off the close Node would make after a Connection: close response, once', () => {
    const res = response(false);
    assert.equal(holdClose(res), true);
    assert.equal(holdClose(res), false, 'nothing is left to put off');
  });

  it('has nothing to put off for a keep-alive response', () => {
    assert.equal(holdClose(response(true)), false);
  });

  it('leaves Node to close as it would when the field is not known (the fallback)', async () => {
    await withFallback('lastResponse', async () => {
      const res = response(false);
      assert.equal(holdClose(res), false);
      assert.equal((res as ServerResponse & { _last?: unknown })._last, true, 'untouched');
    });
  });
});

describe("undici's Request slots", () => {
  /** What an application sees of its request, as JSON. */
  const inspector = async (request: Request): Promise<Response> => {
    // As with undici's own: a copy made with new Request() takes the body, so clone first.
    const clone = request.clone();
    const copy = new Request(request, { headers: { 'x-copied': '1' } });
    return Response.json({
      lookalike: request instanceof NodeRequest,
      undici: Object.getPrototypeOf(request) === Request.prototype,
      isRequest: request instanceof Request,
      method: copy.method,
      url: copy.url,
      copied: copy.headers.get('x-copied'),
      body: await clone.text(),
      original: await copy.text(),
      used: request.bodyUsed,
    });
  };

  async function ask(): Promise<Record<string, unknown>> {
    const server = await serve(inspector, { port: 0 });
    try {
      const response = await fetch(`${server.url}/path?q=1`, { method: 'POST', body: 'payload' });
      return (await response.json()) as Record<string, unknown>;
    } finally {
      await server.close();
    }
  }

  /** What the application saw is what undici's own Request gives: copy, clone, body, URL. */
  function assertBehavesAsARequest(seen: Record<string, unknown>): void {
    assert.equal(seen.method, 'POST');
    assert.match(String(seen.url), /\/path\?q=1$/);
    assert.equal(seen.copied, '1');
    assert.equal(seen.body, 'payload');
    assert.equal(seen.original, 'payload');
    assert.equal(seen.used, true, 'the copy took the body');
  }

  it('are lent to NodeRequest, so that applications get NodeRequests undici takes as its own', async () => {
    assert.equal(lookalikeRequests(), true);
    const seen = await ask();
    assert.equal(seen.lookalike, true);
    assert.equal(seen.isRequest, true);
    assertBehavesAsARequest(seen);
  });

  it('with their fallback forced, applications get undici Requests that behave the same', async () => {
    await withFallback('requestSlots', async () => {
      assert.equal(lookalikeRequests(), false);
      const seen = await ask();
      assert.equal(seen.lookalike, false);
      assert.equal(seen.undici, true);
      assertBehavesAsARequest(seen);
    });
  });
});

describe("OutgoingMessage's useChunkedEncodingByDefault (sendUnframed)", () => {
  function response(): ServerResponse {
    const req = { method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} };
    const res = new ServerResponse(req as IncomingMessage);
    res.sendDate = false;
    return res;
  }
  const head = (res: ServerResponse): string => String((res as { _header?: unknown })._header);

  it('stops Node framing a body of unknown length chunked', () => {
    const res = response();
    assert.equal(sendUnframed(res), true);
    res.writeHead(200, []);
    assert.doesNotMatch(head(res), /transfer-encoding/i);
  });

  it('with its fallback forced, leaves Node to frame chunked', async () => {
    await withFallback('unframedBody', async () => {
      const res = response();
      assert.equal(sendUnframed(res), false);
      res.writeHead(200, []);
      assert.match(head(res), /transfer-encoding: chunked/i);
    });
  });

  for (const forced of [false, true]) {
    it(`a Node listener's streamed body reaches the client as written${forced ? ', with the fallback forced' : ''}`, async () => {
      const listener = (_req: IncomingMessage, res: ServerResponse) => {
        res.setHeader('content-type', 'text/plain');
        res.write('one,');
        setImmediate(() => {
          res.write(Buffer.from('two,'));
          res.end('three');
        });
      };
      const run = async () => {
        const server = await serve(fromNodeListener(listener), { port: 0 });
        try {
          const response = await get(`${server.url}/`);
          assert.equal(response.status, 200);
          assert.equal(response.body.toString(), 'one,two,three');
          assert.equal(response.headers['content-type'], 'text/plain');
        } finally {
          await server.close();
        }
      };
      if (forced) await withFallback('unframedBody', run);
      else await run();
    });
  }
});
