/**
 * Every request finishes in bounded time (DESIGN.md guarantee 6): serve()'s request timeout answers
 * a hung application with 503 and aborts `context.signal`, a layer still running afterwards is
 * reported by name once the grace period is over, a client that stops reading is cut by the send
 * timeout, slow-loris and silent connections are cut by the headers timeout, and maxConnections
 * closes what is past it. Real servers, real sockets.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import {
  createHandler,
  defineMiddleware,
  GracePeriodExceededError,
  type RequestFinishedEvent,
  RequestTimeoutError,
  type RunningServer,
  SendTimeoutError,
  type ServeOptions,
  SignalBus,
  serve,
  toNodeListener,
} from '../../src/index.ts';
import { deferred, get } from '../fixtures/client.ts';

/** A site on its own bus that records what the operator and the receivers hear. */
function site(
  app: Parameters<typeof createHandler>[0],
  middleware: Parameters<typeof defineMiddleware>[0][] = [],
) {
  const bus = new SignalBus();
  const finished: RequestFinishedEvent[] = [];
  const exceptions: unknown[] = [];
  const reports: { error: unknown; where: string }[] = [];
  const finishedOnce = deferred<RequestFinishedEvent>();
  bus.connect('request_finished', (event) => {
    finished.push(event);
    finishedOnce.resolve(event);
  });
  bus.connect('got_request_exception', (event) => {
    exceptions.push(event.error);
  });
  bus.onError = (error, where) => {
    reports.push({ error, where });
  };
  const handler = createHandler(app, { signals: bus, middleware: middleware.map(defineMiddleware) });
  return { handler, finished, exceptions, reports, finishedOnce: finishedOnce.promise };
}

async function serving<T>(
  app: Parameters<typeof serve>[0],
  options: ServeOptions,
  run: (server: RunningServer) => Promise<T>,
): Promise<T> {
  const server = await serve(app, { port: 0, ...options });
  try {
    return await run(server);
  } finally {
    await server.close();
  }
}

const never = (): Promise<Response> => new Promise(() => {});

describe('the request timeout', () => {
  it('answers a hung application 503, aborts context.signal with a TimeoutError, reports it once', async () => {
    const aborted = deferred<unknown>();
    const s = site(function hungApplication(_request, context) {
      context.signal.addEventListener('abort', () => aborted.resolve(context.signal.reason));
      return never();
    });
    await serving(s.handler, { timeout: 100, gracePeriodMs: 50 }, async (server) => {
      const asked = performance.now();
      const response = await get(`${server.url}/slow`);
      assert.equal(response.status, 503);
      // A bound, not a benchmark: never before the timeout is due (the sweep may add up to 25 ms).
      assert.ok(performance.now() - asked >= 100, 'not before the timeout');
      assert.equal(response.body.toString(), 'Service Unavailable\n');
      const reason = await aborted.promise;
      assert.ok(reason instanceof RequestTimeoutError);
      assert.equal((reason as Error).name, 'TimeoutError', 'as AbortSignal.timeout() names it');
      const event = await s.finishedOnce;
      assert.equal(event.status, 503);
      assert.equal(event.outcome, 'completed', 'the client got the whole 503');
      assert.equal(event.error, reason);
      assert.deepEqual(s.exceptions, [reason], 'got_request_exception fired once');
      const application = s.reports.filter((report) => report.where === 'application');
      assert.deepEqual(
        application.map((report) => report.error),
        [reason],
        'reported once, as an application failure',
      );
      assert.equal(s.handler.inFlight, 0);
    });
  });

  it('reports the layer still running after the grace period by name, innermost first, and finishes', async () => {
    const s = site(
      function stuckApplication() {
        return never();
      },
      [
        async function outerLayer(_request, _context, next) {
          return next();
        },
      ],
    );
    await serving(s.handler, { timeout: 100, gracePeriodMs: 100 }, async (server) => {
      assert.equal((await get(`${server.url}/`)).status, 503);
      await s.finishedOnce;
      const grace = s.reports.find((report) => report.error instanceof GracePeriodExceededError);
      assert.ok(grace, 'the grace period report');
      const error = grace.error as GracePeriodExceededError;
      assert.deepEqual(error.running, ['the application stuckApplication', 'middleware outerLayer']);
      assert.match(error.message, /the application stuckApplication \(middleware outerLayer waiting on it\)/);
    });
  });

  it('lets server.close() resolve though the application never returns', async () => {
    const s = site(never);
    const server = await serve(s.handler, { port: 0, timeout: 50, gracePeriodMs: 50 });
    assert.equal((await get(`${server.url}/`)).status, 503);
    await server.close();
    assert.equal(s.finished.length, 1);
    assert.equal(s.handler.inFlight, 0);
  });

  it('discards what the application answers after the 503: its stream is cancelled, never sent', async () => {
    const cancelled = deferred<unknown>();
    const late = deferred();
    const s = site(async () => {
      await late.promise;
      return new Response(
        new ReadableStream({
          pull(controller) {
            controller.enqueue(new TextEncoder().encode('late'));
          },
          cancel(reason) {
            cancelled.resolve(reason);
          },
        }),
      );
    });
    await serving(s.handler, { timeout: 50 }, async (server) => {
      const response = await get(`${server.url}/`);
      assert.equal(response.status, 503);
      late.resolve();
      await cancelled.promise;
      const event = await s.finishedOnce;
      assert.equal(event.status, 503);
      assert.equal(event.bytesSent, 'Service Unavailable\n'.length);
    });
  });

  it('keeps the connection: the next request on it is served', async () => {
    const s = site((request) => (new URL(request.url).pathname === '/hang' ? never() : new Response('fine')));
    await serving(s.handler, { timeout: 50, gracePeriodMs: 50 }, async (server) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const ask = (path: string) =>
          new Promise<{ status: number; body: string; socket: net.Socket }>((resolve, reject) => {
            http
              .get(`${server.url}${path}`, { agent }, (res) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (chunk: string) => {
                  body += chunk;
                });
                res.on('end', () => resolve({ status: res.statusCode!, body, socket: res.socket }));
              })
              .on('error', reject);
          });
        const first = await ask('/hang');
        const second = await ask('/ok');
        assert.equal(first.status, 503);
        assert.deepEqual([second.status, second.body], [200, 'fine']);
        assert.equal(first.socket, second.socket, 'the same connection');
      } finally {
        agent.destroy();
      }
    });
  });

  it('does not bind a streamed body: its head was the answer', async () => {
    const s = site(() => {
      let left = 4;
      return new Response(
        new ReadableStream({
          async pull(controller) {
            await new Promise((resolve) => setTimeout(resolve, 40));
            controller.enqueue(new TextEncoder().encode(`${left}`));
            if (--left === 0) controller.close();
          },
        }),
      );
    });
    await serving(s.handler, { timeout: 60 }, async (server) => {
      const response = await get(`${server.url}/`);
      assert.deepEqual([response.status, response.body.toString()], [200, '4321']);
      assert.equal((await s.finishedOnce).outcome, 'completed');
    });
  });

  it('is off with timeout: 0, for serve() and toNodeListener()', async () => {
    for (const make of [
      (app: ReturnType<typeof site>['handler']) => serve(app, { port: 0, timeout: 0 }),
      async (app: ReturnType<typeof site>['handler']) => {
        const server = http.createServer(toNodeListener(app, { timeout: 0 }));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const { port } = server.address() as net.AddressInfo;
        return {
          url: `http://127.0.0.1:${port}`,
          close: () => {
            server.closeAllConnections();
            return new Promise<void>((resolve) => server.close(() => resolve()));
          },
        };
      },
    ]) {
      const release = deferred();
      const s = site(async () => {
        await release.promise;
        return new Response('in the end');
      });
      const server = await make(s.handler);
      try {
        const answer = get(`${server.url}/`);
        // Three times the 100 ms a timeout would take; then the application answers.
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(s.exceptions.length, 0);
        release.resolve();
        assert.equal((await answer).status, 200);
      } finally {
        await server.close();
      }
    }
  });

  it('applies to toNodeListener() inside a node:http host too (the host bounds no response)', async () => {
    const s = site(never);
    const server = http.createServer(toNodeListener(s.handler, { timeout: 50, gracePeriodMs: 50 }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as net.AddressInfo;
      assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 503);
      assert.equal((await s.finishedOnce).status, 503);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses an option that is not a number of milliseconds, naming it', async () => {
    for (const [name, value] of [
      ['timeout', -1],
      ['sendTimeout', Number.NaN],
      ['headersTimeout', '5'],
    ] as const) {
      await assert.rejects(
        serve(() => new Response('x'), { port: 0, [name]: value }),
        new RegExp(`the ${name} option must be a number of milliseconds`),
      );
    }
    await assert.rejects(
      serve(() => new Response('x'), { port: 0, maxConnections: 1.5 }),
      /maxConnections/,
    );
  });
});

describe('the send timeout', () => {
  /** An endless body of 64 KiB chunks. */
  const endless = () =>
    new Response(
      new ReadableStream({
        pull(controller) {
          controller.enqueue(new Uint8Array(64 * 1024));
        },
      }),
    );

  it('cuts a client that stops reading: request_finished says errored, with a SendTimeoutError', async () => {
    const s = site(endless);
    await serving(s.handler, { sendTimeout: 150 }, async (server) => {
      const socket = net.connect(server.port, '127.0.0.1');
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      socket.pause(); // never reads: the kernel buffers fill, then the server's
      const event = await s.finishedOnce;
      assert.equal(event.outcome, 'errored');
      assert.ok(event.error instanceof SendTimeoutError);
      socket.resume();
      await closed;
    });
  });

  it('leaves a slow client that keeps reading alone', async () => {
    let sent = 0;
    const s = site(
      () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              if (sent >= 2 * 1024 * 1024) return controller.close();
              sent += 64 * 1024;
              controller.enqueue(new Uint8Array(64 * 1024));
            },
          }),
        ),
    );
    await serving(s.handler, { sendTimeout: 150 }, async (server) => {
      const socket = net.connect(server.port, '127.0.0.1');
      socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      let received = 0;
      socket.on('data', (data: Buffer) => {
        received += data.length;
        // Reads a little at a time: about 64 KiB every 50 ms.
        socket.pause();
        setTimeout(() => socket.resume(), 50);
      });
      await new Promise((resolve) => socket.once('close', resolve));
      const event = await s.finishedOnce;
      assert.equal(event.outcome, 'completed');
      assert.ok(received > 2 * 1024 * 1024);
    });
  });
});

describe("Node's headers timeout, checked often", () => {
  for (const [label, send] of [
    ['a connection that sends nothing', () => {}],
    [
      'a slow-loris client (one header line every 50 ms, never done)',
      (socket: net.Socket) => {
        socket.write('GET / HTTP/1.1\r\n');
        const timer = setInterval(() => {
          if (socket.destroyed) clearInterval(timer);
          else socket.write('x-more: 1\r\n');
        }, 50);
      },
    ],
  ] as const) {
    it(`closes ${label} with a 408 once headersTimeout is over`, async () => {
      await serving(
        () => new Response('x'),
        { headersTimeout: 200 },
        async (server) => {
          const started = performance.now();
          const socket = net.connect(server.port, '127.0.0.1', () => send(socket));
          let received = '';
          socket.setEncoding('latin1');
          socket.on('data', (data: string) => {
            received += data;
          });
          await new Promise((resolve) => socket.once('close', resolve));
          const elapsed = performance.now() - started;
          assert.match(received, /^HTTP\/1\.1 408 /);
          // Node's own default check runs every 30 s: within a second means the interval was set.
          assert.ok(elapsed < 1000, `closed after ${Math.round(elapsed)} ms`);
        },
      );
    });
  }
});

describe('maxConnections', () => {
  it('closes connections past the limit as they arrive, and serves the ones within it', async () => {
    await serving(
      () => new Response('x'),
      { maxConnections: 1 },
      async (server) => {
        const first = net.connect(server.port, '127.0.0.1');
        await new Promise((resolve) => first.once('connect', resolve));
        try {
          // The server has seen the first one once it answers on it.
          first.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
          await new Promise((resolve) => first.once('data', resolve));
          const second = net.connect(server.port, '127.0.0.1');
          let answered = false;
          second.on('data', () => {
            answered = true;
          });
          second.on('error', () => {});
          second.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
          await new Promise((resolve) => second.once('close', resolve));
          assert.equal(answered, false);
        } finally {
          first.destroy();
        }
      },
    );
  });
});
