import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import express from 'express';
import { Hono } from 'hono';
import { stream as honoStream } from 'hono/streaming';
import {
  type Application,
  createHandler,
  fromNodeListener,
  type MountContext,
  mount,
  type RequestContext,
  type RequestFinishedEvent,
  SignalBus,
} from '../src/index.ts';
import { deferred, get, open, withServer } from './fixtures/client.ts';
import { exchange } from './fixtures/host.ts';
import { replacesResponse } from './fixtures/middleware.ts';
import { recordingStream } from './fixtures/streams.ts';

const request = (path: string, init?: RequestInit) => new Request(`http://127.0.0.1${path}`, init);

/** An application that answers with what it saw: its name, the URL path and query, the mount path. */
const echo =
  (name: string): Application =>
  (req, context) => {
    const url = new URL(req.url);
    const mounted = context as MountContext;
    return Response.json({
      name,
      path: url.pathname + url.search,
      mountPath: mounted.mountPath ?? null,
      originalUrl: mounted.originalUrl ?? null,
    });
  };

async function seen(app: Application, path: string, init?: RequestInit) {
  const { text, status } = await exchange(app, request(path, init));
  return { status, ...(status === 200 ? JSON.parse(text) : { text }) };
}

describe('mount()', () => {
  describe('choosing the application', () => {
    const site = mount({ '/api': echo('api'), '/api/v2': echo('v2'), '/static/': echo('static') });

    it('takes the longest matching prefix', async () => {
      assert.equal((await seen(site, '/api/v2/users')).name, 'v2');
      assert.equal((await seen(site, '/api/v1/users')).name, 'api');
      assert.equal((await seen(site, '/api/v2')).name, 'v2');
    });

    it('matches the prefix itself and paths below it, never a longer word', async () => {
      assert.equal((await seen(site, '/api')).name, 'api');
      assert.equal((await seen(site, '/api/')).name, 'api');
      assert.equal((await seen(site, '/api/x/y')).name, 'api');
      assert.equal((await seen(site, '/apix')).status, 404);
      assert.equal((await seen(site, '/api/v2x')).name, 'api');
    });

    it('ignores a trailing slash on a prefix', async () => {
      assert.equal((await seen(site, '/static')).name, 'static');
      assert.equal((await seen(site, '/static/app.js')).path, '/app.js');
    });

    it('answers a plain 404 when nothing matches and there is no fallback', async () => {
      const { status, text } = await seen(site, '/elsewhere');
      assert.equal(status, 404);
      assert.equal(text, 'Not Found\n');
    });

    it('sends what nothing matches to the fallback, with the request unchanged', async () => {
      const withFallback = mount({ '/api': echo('api') }, echo('fallback'));
      const answer = await seen(withFallback, '/elsewhere?x=1');
      assert.equal(answer.name, 'fallback');
      assert.equal(answer.path, '/elsewhere?x=1');
      assert.equal(answer.mountPath, null);
    });

    it("treats '/' as a prefix of everything, below every longer one", async () => {
      const rooted = mount({ '/': echo('root'), '/api': echo('api') });
      assert.equal((await seen(rooted, '/anything')).name, 'root');
      assert.equal((await seen(rooted, '/anything')).path, '/anything');
      assert.equal((await seen(rooted, '/api/x')).name, 'api');
    });
  });

  describe('what the mounted application sees (SCRIPT_NAME / PATH_INFO)', () => {
    const site = mount({ '/api': echo('api') });

    it('a URL without the prefix, query kept', async () => {
      assert.equal((await seen(site, '/api/users?page=2')).path, '/users?page=2');
    });

    it('the prefix alone as /', async () => {
      assert.equal((await seen(site, '/api')).path, '/');
      assert.equal((await seen(site, '/api?x=1')).path, '/?x=1');
    });

    it('the prefix as context.mountPath and the full URL as context.originalUrl', async () => {
      const answer = await seen(site, '/api/users?page=2');
      assert.equal(answer.mountPath, '/api');
      assert.equal(answer.originalUrl, 'http://127.0.0.1/api/users?page=2');
    });

    it('nested mounts add up their prefixes', async () => {
      const nested = mount({ '/v1': mount({ '/api': echo('inner') }) });
      const answer = await seen(nested, '/v1/api/users');
      assert.equal(answer.path, '/users');
      assert.equal(answer.mountPath, '/v1/api');
      assert.equal(answer.originalUrl, 'http://127.0.0.1/v1/api/users');
    });

    it('the method, headers and body of the request', async () => {
      const body: Application = async (req) =>
        new Response(`${req.method} ${req.headers.get('x-test')} ${await req.text()}`);
      const { text } = await exchange(
        mount({ '/api': body }),
        request('/api/items', { method: 'POST', headers: { 'x-test': 'yes' }, body: 'payload' }),
      );
      assert.equal(text, 'POST yes payload');
    });

    it('the same request scope: id, state, signal and onClose are the parent context’s', async () => {
      let parent: RequestContext | undefined;
      let child: RequestContext | undefined;
      const closed: string[] = [];
      const inner: Application = (_req, context) => {
        child = context;
        context.state.fromChild = true;
        context.onClose(({ outcome }) => {
          closed.push(outcome);
        });
        return new Response('ok');
      };
      const outer: Application = (req, context) => {
        parent = context;
        return mount({ '/api': inner })(req, context);
      };
      const { info } = await exchange(outer, request('/api'));
      assert.equal(info.outcome, 'completed');
      assert.notEqual(child, parent);
      assert.equal(child!.id, parent!.id);
      assert.equal(child!.state, parent!.state);
      assert.equal(parent!.state.fromChild, true);
      assert.equal(child!.signal, parent!.signal);
      assert.equal(child!.remoteAddress, '127.0.0.1');
      assert.deepEqual(closed, ['completed']);
    });
  });

  describe('what can be mounted', () => {
    it('a tsgi Handler, which joins the request scope', async () => {
      const outerBus = new SignalBus();
      const innerBus = new SignalBus();
      const events: string[] = [];
      for (const [name, bus] of [
        ['outer', outerBus],
        ['inner', innerBus],
      ] as const) {
        bus.connect('request_started', () => {
          events.push(`${name} started`);
        });
        bus.connect('request_finished', () => {
          events.push(`${name} finished`);
        });
      }
      const inner = createHandler(echo('inner'), { signals: innerBus });
      const site = createHandler(mount({ '/api': inner }), { signals: outerBus });
      const answer = await seen(site, '/api/x');
      assert.equal(answer.path, '/x');
      assert.deepEqual(events, ['outer started', 'inner started', 'inner finished', 'outer finished']);
    });

    it('an object with fetch(), such as a Hono app', async () => {
      const hono = new Hono();
      hono.get('/users/:id', (c) => c.json({ id: c.req.param('id'), path: c.req.path }));
      const { text } = await exchange(mount({ '/hono': hono }), request('/hono/users/7'));
      assert.deepEqual(JSON.parse(text), { id: '7', path: '/users/7' });
    });

    it('a body the mounted application returned is cancelled when a layer drops it', async () => {
      const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
      const site = createHandler(mount({ '/api': () => new Response(source.stream) }), {
        middleware: [replacesResponse()],
        signals: new SignalBus(),
      });
      const { text } = await exchange(site, request('/api'));
      assert.equal(text, 'replaced');
      assert.equal(source.cancelled, true);
    });

    it('a mounted application that returns no Response is named in the error', async () => {
      const bus = new SignalBus();
      const errors: unknown[] = [];
      bus.connect('got_request_exception', ({ error }) => {
        errors.push(error);
      });
      const broken = (() => undefined) as unknown as Application;
      const site = createHandler(mount({ '/api': broken }), { signals: bus });
      const { status } = await exchange(site, request('/api'));
      assert.equal(status, 500);
      assert.match(String(errors[0]), /the application mounted at '\/api' returned undefined/);
    });
  });

  describe('bad input, refused when the site is built', () => {
    it("a prefix that does not start with '/'", () => {
      assert.throws(() => mount({ api: echo('api') }), {
        name: 'TypeError',
        message: /the prefix 'api' must start with '\/' — did you mean '\/api'\?/,
      });
    });

    it('an application that is not a function or an object with fetch()', () => {
      assert.throws(() => mount({ '/api': { default: echo('api') } as never }), {
        name: 'TypeError',
        message:
          /the application mounted at '\/api' is object, not a function or an object with a fetch\(\) method/,
      });
      assert.throws(() => mount({ '/api': undefined as never }), /is undefined/);
    });

    it('a fallback that is not an application', () => {
      assert.throws(
        () => mount({}, 'index.html' as never),
        /the application given as the fallback is string/,
      );
    });

    it('a prefix given twice, or one with a query', () => {
      assert.throws(
        () => mount({ '/api': echo('a'), '/api/': echo('b') }),
        /the prefix '\/api' is given twice/,
      );
      assert.throws(() => mount({ '/api?x': echo('a') }), /cannot hold a query/);
    });

    it('no object of prefixes', () => {
      assert.throws(() => mount(undefined as never), /apps must be an object of prefixes/);
    });
  });

  describe('a real Hono app and a real Express app side by side, over a real connection', () => {
    function site() {
      const hono = new Hono();
      hono.get('/', (c) => c.text(`hono at ${c.req.path}`));
      hono.get('/items/:id', (c) => c.json({ framework: 'hono', id: c.req.param('id') }));
      const honoAborted = deferred<void>();
      hono.get('/endless', (c) =>
        honoStream(c, async (stream) => {
          stream.onAbort(() => honoAborted.resolve());
          while (!stream.aborted) await stream.write('tick\n');
        }),
      );

      const app = express();
      app.get('/items/:id', (req, res) => {
        res.json({ framework: 'express', id: req.params.id, url: req.url, originalUrl: req.originalUrl });
      });
      const expressClosed = deferred<{ finished: boolean }>();
      app.get('/slow', (req, res) => {
        res.write('started\n');
        let closed = 0;
        const onClose = () => {
          if (++closed === 2) expressClosed.resolve({ finished: res.writableFinished });
        };
        req.on('close', onClose);
        res.on('close', onClose);
      });

      const bus = new SignalBus();
      const finished: RequestFinishedEvent[] = [];
      let started = 0;
      bus.connect('request_started', () => {
        started++;
      });
      const waiters: (() => void)[] = [];
      bus.connect('request_finished', (event) => {
        finished.push(event);
        for (const wake of waiters.splice(0)) wake();
      });
      const finishedCount = (count: number): Promise<void> =>
        finished.length >= count
          ? Promise.resolve()
          : new Promise((resolve) => {
              const check = () => (finished.length >= count ? resolve() : waiters.push(check));
              waiters.push(check);
            });
      const handler = createHandler(
        mount({ '/hono': hono, '/express': fromNodeListener(app) }, () => new Response('front page')),
        { signals: bus },
      );
      return {
        handler,
        finished,
        started: () => started,
        finishedCount,
        honoAborted: honoAborted.promise,
        expressClosed: expressClosed.promise,
      };
    }

    it('dispatches to each framework with the prefix stripped, one signal pair per request', async () => {
      const s = site();
      await withServer(s.handler, async (server) => {
        const hono = await get(`${server.url}/hono/items/1`);
        const express = await get(`${server.url}/express/items/2?q=x`);
        const honoRoot = await get(`${server.url}/hono`);
        const front = await get(`${server.url}/`);
        assert.deepEqual(JSON.parse(hono.body.toString()), { framework: 'hono', id: '1' });
        assert.deepEqual(JSON.parse(express.body.toString()), {
          framework: 'express',
          id: '2',
          url: '/items/2?q=x',
          originalUrl: '/express/items/2?q=x',
        });
        assert.equal(honoRoot.body.toString(), 'hono at /');
        assert.equal(front.body.toString(), 'front page');
        await s.finishedCount(4);
      });
      assert.equal(s.started(), 4);
      assert.equal(s.finished.length, 4);
      assert.deepEqual(
        s.finished.map((event) => [new URL(event.request.url).pathname, event.status, event.outcome]),
        [
          ['/hono/items/1', 200, 'completed'],
          ['/express/items/2', 200, 'completed'],
          ['/hono', 200, 'completed'],
          ['/', 200, 'completed'],
        ],
      );
      assert.equal(new Set(s.finished.map((event) => event.context.id)).size, 4);
    });

    it('a client that leaves reaches the Express handler as req and res close, and signals fire once', async () => {
      const s = site();
      await withServer(s.handler, async (server) => {
        const { req, res } = await open(`${server.url}/express/slow`);
        await new Promise((resolve) => res.once('data', resolve));
        req.destroy();
        assert.deepEqual(await s.expressClosed, { finished: false });
        await s.finishedCount(1);
      });
      assert.equal(s.started(), 1);
      assert.equal(s.finished.length, 1);
      assert.equal(s.finished[0]!.outcome, 'aborted');
    });

    it('a client that leaves reaches the Hono stream as onAbort, and signals fire once', async () => {
      const s = site();
      await withServer(s.handler, async (server) => {
        const { req, res } = await open(`${server.url}/hono/endless`);
        await new Promise((resolve) => res.once('data', resolve));
        req.destroy();
        await s.honoAborted;
        await s.finishedCount(1);
      });
      assert.equal(s.finished.length, 1);
      assert.equal(s.finished[0]!.outcome, 'aborted');
    });
  });
});
