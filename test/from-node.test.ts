import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { RequestScope } from '../src/host.ts';
import {
  type Application,
  createHandler,
  fromNodeListener,
  type RequestFinishedEvent,
  type RequestListener,
  SignalBus,
} from '../src/index.ts';
import { deferred, get, open, withServer } from './fixtures/client.ts';
import { exchange } from './fixtures/host.ts';

const request = (path: string, init?: RequestInit) => new Request(`http://127.0.0.1${path}`, init);

/** Calls `app` inside a scope of our own, as a server would, and hands back both. */
async function call(app: Application, req: Request = request('/')) {
  const scope = new RequestScope({ remoteAddress: '10.0.0.7' });
  const response = await app(req, scope.context);
  return { scope, response };
}

/** Records the events a Node listener's req and res emit, in order. */
function watch(req: IncomingMessage, res: ServerResponse, events: string[]): void {
  req.on('aborted', () => events.push('req aborted'));
  req.on('close', () => events.push('req close'));
  res.on('finish', () => events.push('res finish'));
  res.on('close', () => events.push(`res close${res.writableFinished ? '' : ' (unfinished)'}`));
}

/** A bus with a promise for the nth request_finished. */
function recordingBus() {
  const bus = new SignalBus();
  const finished: RequestFinishedEvent[] = [];
  const errors: unknown[] = [];
  const next = deferred<RequestFinishedEvent>();
  bus.connect('request_finished', (event) => {
    finished.push(event);
    next.resolve(event);
  });
  bus.connect('got_request_exception', ({ error }) => {
    errors.push(error);
  });
  return { bus, finished, errors, firstFinished: next.promise };
}

describe('fromNodeListener()', () => {
  describe('the response', () => {
    it('carries the status, reason and headers set with setHeader()', async () => {
      const app = fromNodeListener((_req, res) => {
        res.statusCode = 201;
        res.statusMessage = 'Made';
        res.setHeader('content-type', 'application/json');
        res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly']);
        res.end('{"ok":true}');
      });
      const { response } = await call(app);
      assert.equal(response.status, 201);
      assert.equal(response.statusText, 'Made');
      assert.equal(response.headers.get('content-type'), 'application/json');
      assert.deepEqual(response.headers.getSetCookie(), ['a=1; Path=/', 'b=2; HttpOnly']);
      assert.equal(await response.text(), '{"ok":true}');
    });

    it('carries headers given only to writeHead()', async () => {
      const app = fromNodeListener((_req, res) => {
        res.writeHead(200, { 'x-only-in-write-head': 'yes', 'content-length': '2' });
        res.end('ok');
      });
      const { response } = await call(app);
      assert.equal(response.headers.get('x-only-in-write-head'), 'yes');
      assert.equal(response.headers.get('content-length'), '2');
      assert.equal(await response.text(), 'ok');
    });

    it('drops hop-by-hop headers and adds no Date (the tsgi server frames and dates the response)', async () => {
      const app = fromNodeListener((_req, res) => {
        res.setHeader('connection', 'keep-alive');
        res.setHeader('keep-alive', 'timeout=5');
        res.end('ok');
      });
      const { response } = await call(app);
      assert.deepEqual([...response.headers.keys()].sort(), []);
    });

    it('decodes a body the listener chunk-encoded by setting Transfer-Encoding itself', async () => {
      const app = fromNodeListener((_req, res) => {
        res.setHeader('transfer-encoding', 'chunked');
        res.write('hello, ');
        res.write(Buffer.alloc(3000, 'x'));
        res.end('world');
      });
      const { response } = await call(app);
      assert.equal(response.headers.get('transfer-encoding'), null);
      assert.equal(await response.text(), `hello, ${'x'.repeat(3000)}world`);
    });

    it('skips interim responses (100 Continue, 103 Early Hints)', async () => {
      const app = fromNodeListener((_req, res) => {
        res.writeContinue();
        res.writeEarlyHints({ link: '</style.css>; rel=preload' });
        res.end('final');
      });
      const { response } = await call(app);
      assert.equal(response.status, 200);
      assert.equal(await response.text(), 'final');
    });

    it('has no body for HEAD, 204 and 304, and keeps their headers', async () => {
      const app = fromNodeListener((req, res) => {
        if (req.url === '/204') res.writeHead(204).end();
        else if (req.url === '/304') res.writeHead(304, { etag: '"v1"' }).end();
        else res.writeHead(200, { 'content-length': '5' }).end('hello');
      });
      const head = (await call(app, request('/', { method: 'HEAD' }))).response;
      assert.equal(head.body, null);
      assert.equal(head.headers.get('content-length'), '5');
      assert.equal((await call(app, request('/204'))).response.status, 204);
      const notModified = (await call(app, request('/304'))).response;
      assert.equal(notModified.status, 304);
      assert.equal(notModified.headers.get('etag'), '"v1"');
    });

    it('streams: the head and the first chunk arrive before the listener ends', async () => {
      const second = deferred();
      const app = fromNodeListener((_req, res) => {
        res.write('first;');
        void second.promise.then(() => res.end('second;'));
      });
      const { response } = await call(app);
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      assert.equal(decoder.decode((await reader.read()).value), 'first;');
      second.resolve();
      assert.equal(decoder.decode((await reader.read()).value), 'second;');
      assert.equal((await reader.read()).done, true);
    });

    it('applies backpressure: res.write() returns false until the client reads, then drains', async () => {
      let written = 0;
      let drains = 0;
      const total = 256;
      const app = fromNodeListener((_req, res) => {
        const pump = (): void => {
          while (written < total) {
            written++;
            if (!res.write(Buffer.alloc(1024, 'a'))) {
              res.once('drain', () => {
                drains++;
                pump();
              });
              return;
            }
          }
          res.end();
        };
        pump();
      });
      const { response } = await call(app);
      for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
      assert.ok(written < 32, `the listener wrote ${written} KiB nobody read`);
      assert.equal((await response.arrayBuffer()).byteLength, total * 1024);
      assert.ok(drains > 0);
    });
  });

  describe('the request', () => {
    it('has the method, URL, headers, HTTP version and client address', async () => {
      let seen: Record<string, unknown> = {};
      const app = fromNodeListener((req, res) => {
        seen = {
          method: req.method,
          url: req.url,
          host: req.headers.host,
          custom: req.headers['x-custom'],
          raw: req.rawHeaders.includes('x-custom'),
          version: req.httpVersion,
          address: req.socket.remoteAddress,
        };
        res.end();
      });
      await call(app, request('/path?q=1', { method: 'DELETE', headers: { 'x-custom': 'v' } }));
      assert.deepEqual(seen, {
        method: 'DELETE',
        url: '/path?q=1',
        host: '127.0.0.1',
        custom: 'v',
        raw: true,
        version: '1.1',
        address: '10.0.0.7',
      });
    });

    it('streams the fetch body into req as the listener reads it', async () => {
      const app = fromNodeListener((req, res) => {
        res.setHeader('content-type', 'application/octet-stream');
        req.pipe(res);
      });
      const upload = Buffer.alloc(200_000, 'u');
      const { response } = await call(app, request('/', { method: 'PUT', body: upload }));
      assert.deepEqual(Buffer.from(await response.arrayBuffer()), upload);
    });

    it('works with Express body parsers', async () => {
      const site = express();
      site.post('/echo', express.json(), (req, res) => {
        res.json({ got: req.body, ip: req.ip, protocol: req.protocol, host: req.hostname });
      });
      const { response } = await call(
        fromNodeListener(site),
        request('/echo', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ a: [1, 2] }),
        }),
      );
      assert.deepEqual(await response.json(), {
        got: { a: [1, 2] },
        ip: '10.0.0.7',
        protocol: 'http',
        host: '127.0.0.1',
      });
    });
  });

  describe('errors', () => {
    it('next(error) before the response started is an exception of the application: 500', async () => {
      const { bus, errors } = recordingBus();
      const site = express();
      site.get('/boom', () => {
        throw new Error('boom in express');
      });
      const handler = createHandler(fromNodeListener(site), { signals: bus });
      const { status, text } = await exchange(handler, request('/boom'));
      assert.equal(status, 500);
      assert.equal(text, 'Internal Server Error\n');
      assert.match(String(errors[0]), /boom in express/);
    });

    it('a listener that throws synchronously is an exception too', async () => {
      const { bus, errors } = recordingBus();
      const handler = createHandler(
        fromNodeListener(() => {
          throw new Error('sync throw');
        }),
        { signals: bus },
      );
      assert.equal((await exchange(handler, request('/'))).status, 500);
      assert.match(String(errors[0]), /sync throw/);
    });

    it('next() with nothing written is a 404', async () => {
      const connectStyle: RequestListener = (_req, _res, next) => next();
      const { status, text } = await exchange(fromNodeListener(connectStyle), request('/nothing'));
      assert.equal(status, 404);
      assert.equal(text, 'Not Found\n');
    });

    it('a listener that destroys the connection mid-body errors the body', async () => {
      const app = fromNodeListener((_req, res) => {
        res.write('partial');
        setImmediate(() => res.destroy());
      });
      const { info, text } = await exchange(app, request('/'));
      assert.equal(text, 'partial');
      assert.equal(info.outcome, 'errored');
    });

    it('a status a fetch Response cannot carry is an exception', async () => {
      const { bus, errors } = recordingBus();
      const handler = createHandler(
        fromNodeListener((_req, res) => res.writeHead(700).end()),
        { signals: bus },
      );
      assert.equal((await exchange(handler, request('/'))).status, 500);
      assert.match(String(errors[0]), /status 700/);
    });

    it('refuses something that is not a listener when the site is built', () => {
      assert.throws(() => fromNodeListener({} as never), /listener must be a \(req, res\) => void function/);
    });
  });

  describe('the lifecycle of req and res', () => {
    it('after a complete response: res finish, then res close; req closes', async () => {
      const events: string[] = [];
      const closed = deferred();
      const app = fromNodeListener((req, res) => {
        watch(req, res, events);
        let count = 0;
        const onClose = () => {
          if (++count === 2) closed.resolve();
        };
        req.on('close', onClose);
        res.on('close', onClose);
        res.end('done');
      });
      const { info, text } = await exchange(app, request('/'));
      await closed.promise;
      assert.equal(text, 'done');
      assert.equal(info.outcome, 'completed');
      assert.deepEqual(
        events.filter((event) => event.startsWith('res')),
        ['res finish', 'res close'],
      );
      assert.ok(events.includes('req close'), events.join());
      assert.equal(events.includes('req aborted'), false);
    });

    it('a client that leaves mid-body: req aborted and closed, res closed unfinished', async () => {
      const events: string[] = [];
      const closed = deferred();
      const app = fromNodeListener((req, res) => {
        watch(req, res, events);
        res.on('close', () => closed.resolve());
        res.write('first;'); // and never ends
      });
      const { info, text } = await exchange(app, request('/'), 'read-part-then-leave');
      await closed.promise;
      assert.equal(text, 'first;');
      assert.equal(info.outcome, 'aborted');
      assert.ok(events.includes('req aborted'), events.join());
      assert.ok(events.includes('res close (unfinished)'), events.join());
      assert.equal(events.includes('res finish'), false);
    });

    it('a listener that keeps writing after the client left stops at res close, and nothing throws', async () => {
      const closed = deferred<number>();
      const app = fromNodeListener((_req, res) => {
        let writes = 0;
        const tick = (): void => {
          if (res.destroyed) {
            closed.resolve(writes);
            return;
          }
          res.write(`tick ${writes++}\n`);
          setImmediate(tick);
        };
        tick();
      });
      const { info } = await exchange(app, request('/'), 'read-part-then-leave');
      assert.equal(info.outcome, 'aborted');
      assert.ok((await closed.promise) >= 1);
    });

    it('a client that leaves before the head: the listener sees it, and the request still finishes', async () => {
      const events: string[] = [];
      const closed = deferred();
      const { bus, firstFinished } = recordingBus();
      const neverAnswers: RequestListener = (req, res) => {
        watch(req, res, events);
        res.on('close', () => closed.resolve());
      };
      const handler = createHandler(fromNodeListener(neverAnswers), { signals: bus });
      const { info } = await exchange(handler, request('/'), 'leave-before-response');
      assert.equal(info.outcome, 'aborted');
      assert.equal((await firstFinished).outcome, 'aborted');
      await closed.promise;
      assert.ok(events.includes('req aborted'), events.join());
      assert.ok(events.includes('res close (unfinished)'), events.join());
    });
  });

  describe('a real Express app over a real connection', () => {
    const fixture = fileURLToPath(new URL('./fixtures/streams.ts', import.meta.url));

    function site() {
      const app = express();
      app.get('/file', (_req, res) => res.sendFile(fixture));
      app.get('/redirect', (_req, res) => res.redirect('/file'));
      const aborted = deferred<string[]>();
      app.get('/slow', (req, res) => {
        const events: string[] = [];
        watch(req, res, events);
        let closed = 0;
        const onClose = () => {
          if (++closed === 2) aborted.resolve(events);
        };
        req.on('close', onClose);
        res.on('close', onClose);
        res.write('waiting');
      });
      return { listener: fromNodeListener(app), aborted: aborted.promise };
    }

    it('serves a file with sendFile (piped with backpressure) and redirects', async () => {
      const { bus, finished } = recordingBus();
      const { listener } = site();
      await withServer(createHandler(listener, { signals: bus }), async (server) => {
        const file = await get(`${server.url}/file`);
        assert.equal(file.status, 200);
        assert.deepEqual(file.body, readFileSync(fixture));
        assert.ok(file.headers.etag);
        const redirect = await get(`${server.url}/redirect`);
        assert.equal(redirect.status, 302);
        assert.equal(redirect.headers.location, '/file');
      });
      assert.deepEqual(
        finished.map((event) => event.outcome),
        ['completed', 'completed'],
      );
    });

    it('a client that disconnects reaches the Express handler as req aborted, req and res close', async () => {
      const { bus, firstFinished, finished } = recordingBus();
      const { listener, aborted } = site();
      await withServer(createHandler(listener, { signals: bus }), async (server) => {
        const { req, res } = await open(`${server.url}/slow`);
        await new Promise((resolve) => res.once('data', resolve));
        req.destroy();
        const events = await aborted;
        assert.ok(events.includes('req aborted'), events.join());
        assert.ok(events.includes('req close'), events.join());
        assert.ok(events.includes('res close (unfinished)'), events.join());
        assert.equal((await firstFinished).outcome, 'aborted');
      });
      assert.equal(finished.length, 1);
    });
  });
});
