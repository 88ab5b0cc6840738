/**
 * fromNodeListener() when the mounted listener fails, over real connections: an async listener that
 * rejects, a Connect-style `next(error)`, a failure after the head went out, an Express 5 app with
 * and without its own error handler — each must answer or cut the connection as documented, report
 * the error once through `onError`, finish the request once, and leave no unhandled rejection. Also:
 * the hop-by-hop fields a listener names in its `Connection` header never reach the client.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import express from 'express';
import {
  type Application,
  createHandler,
  fromNodeListener,
  mount,
  type RequestFinishedEvent,
  type RequestListener,
  SignalBus,
} from '../../src/index.ts';
import type { ErrorSource } from '../../src/report.ts';
import { deferred, get, open, withServer } from '../fixtures/client.ts';

/** A site on its own bus that records what reaches the operator and what the receivers hear. */
function site(listener: RequestListener) {
  const reports: { error: unknown; where: ErrorSource; path: string | undefined }[] = [];
  const exceptions: unknown[] = [];
  const finished: RequestFinishedEvent[] = [];
  const firstFinished = deferred<RequestFinishedEvent>();
  const bus = new SignalBus({
    onError: (error, where, request) =>
      reports.push({ error, where, path: request && new URL(request.url).pathname }),
  });
  bus.connect('got_request_exception', ({ error }) => {
    exceptions.push(error);
  });
  bus.connect('request_finished', (event) => {
    finished.push(event);
    firstFinished.resolve(event);
  });
  // Mounted, as a site would mount a legacy Express app next to its own views.
  const app: Application = mount({ '/legacy': fromNodeListener(listener) });
  return { handler: createHandler(app, { signals: bus }), reports, exceptions, finished, firstFinished };
}

interface Received {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** False when the connection was cut before the body's end. */
  complete: boolean;
}

/** One request; resolves once the response is over, whether it completed or was cut. */
function receive(url: string): Promise<Received> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        body += text;
      });
      res.on('error', () => {}); // a cut connection: 'close' below says so with complete === false
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete: res.complete }),
      );
    });
    req.end();
  });
}

/** Resolves once the first chunk written with it has been taken by the client. */
function written(res: http.ServerResponse, chunk: string): Promise<void> {
  return new Promise((resolve) => res.write(chunk, () => resolve()));
}

describe('fromNodeListener() when the listener fails', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  before(() => process.on('unhandledRejection', onUnhandled));
  after(() => process.off('unhandledRejection', onUnhandled));
  afterEach(async () => {
    // A rejection nobody handled is reported after the microtasks of its turn: one more turn is enough.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled.splice(0), [], 'no unhandled rejection');
  });

  describe('before anything was written', () => {
    it('an async listener that rejects: the client gets a 500, got_request_exception fires, the error is reported', {
      timeout: 10_000,
    }, async () => {
      const boom = new Error('async listener failed');
      const s = site(async () => {
        await Promise.resolve();
        throw boom;
      });
      await withServer(s.handler, async (server) => {
        const response = await get(`${server.url}/legacy/orders`);
        assert.equal(response.status, 500);
        assert.equal(response.body.toString(), 'Internal Server Error\n');
        const finished = await s.firstFinished.promise;
        assert.equal(finished.status, 500);
        assert.equal(finished.outcome, 'completed');
        assert.equal(finished.error, boom);
      });
      assert.deepEqual(s.exceptions, [boom]);
      assert.deepEqual(s.reports, [{ error: boom, where: 'application', path: '/legacy/orders' }]);
      assert.equal(s.finished.length, 1);
    });

    it('a Connect-style next(error) is a 500 too', { timeout: 10_000 }, async () => {
      const boom = new Error('passed to next');
      const s = site((_req, _res, next) => {
        setImmediate(() => next(boom));
      });
      await withServer(s.handler, async (server) => {
        const response = await get(`${server.url}/legacy/`);
        assert.equal(response.status, 500);
        assert.equal(response.body.toString(), 'Internal Server Error\n');
        await s.firstFinished.promise;
      });
      assert.deepEqual(s.exceptions, [boom]);
      assert.deepEqual(
        s.reports.map(({ where }) => where),
        ['application'],
      );
    });
  });

  describe('after the head went out', () => {
    it('an async listener that rejects mid-body: the connection is cut, request_finished says errored, the error is reported once', {
      timeout: 10_000,
    }, async () => {
      const boom = new Error('failed mid-body');
      const s = site(async (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        await written(res, 'partial;');
        throw boom;
      });
      await withServer(s.handler, async (server) => {
        const response = await receive(`${server.url}/legacy/report`);
        assert.equal(response.status, 200);
        assert.equal(response.body, 'partial;');
        assert.equal(response.complete, false, 'the client must see a cut connection, not a whole body');
        const finished = await s.firstFinished.promise;
        assert.equal(finished.outcome, 'errored');
        assert.equal(finished.error, boom);
      });
      assert.deepEqual(s.exceptions, [], 'no got_request_exception: no 500 could be sent');
      assert.deepEqual(s.reports, [{ error: boom, where: 'response', path: '/legacy/report' }]);
      assert.equal(s.finished.length, 1);
    });

    it('next(error) mid-body cuts the connection the same way', { timeout: 10_000 }, async () => {
      const boom = new Error('next after the head');
      const s = site((_req, res, next) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        void written(res, 'partial;').then(() => next(boom));
      });
      await withServer(s.handler, async (server) => {
        const response = await receive(`${server.url}/legacy/`);
        assert.equal(response.body, 'partial;');
        assert.equal(response.complete, false);
        assert.equal((await s.firstFinished.promise).outcome, 'errored');
      });
      assert.deepEqual(
        s.reports.map(({ error, where }) => [error, where]),
        [[boom, 'response']],
      );
    });

    it('an async listener that ended its response and then rejects: the client gets it all; the error is still reported', {
      timeout: 10_000,
    }, async () => {
      const boom = new Error('after the end');
      const s = site(async (_req, res) => {
        res.end('whole answer');
        throw boom;
      });
      await withServer(s.handler, async (server) => {
        const response = await receive(`${server.url}/legacy/`);
        assert.equal(response.status, 200);
        assert.equal(response.body, 'whole answer');
        assert.equal(response.complete, true);
        const finished = await s.firstFinished.promise;
        assert.equal(finished.outcome, 'completed');
        assert.equal(finished.error, boom);
      });
      assert.deepEqual(
        s.reports.map(({ error, where }) => [error, where]),
        [[boom, 'response']],
      );
    });

    it('request_finished waits for an async listener still running after its response ended', {
      timeout: 10_000,
    }, async () => {
      const release = deferred();
      const order: string[] = [];
      const s = site(async (_req, res) => {
        res.end('early answer');
        await release.promise;
        order.push('listener done');
      });
      s.handler.signals.connect('request_finished', () => {
        order.push('request_finished');
      });
      await withServer(s.handler, async (server) => {
        const response = await receive(`${server.url}/legacy/`);
        assert.equal(response.body, 'early answer');
        assert.deepEqual(order, []);
        release.resolve();
        await s.firstFinished.promise;
      });
      assert.deepEqual(order, ['listener done', 'request_finished']);
    });
  });

  describe('after the client left', () => {
    it('reports nothing more: what the listener throws then is most likely the disconnect itself', {
      timeout: 10_000,
    }, async () => {
      const s = site(async (_req, res) => {
        await written(res, 'first;');
        await new Promise((resolve) => res.once('close', resolve));
        throw new Error('write after the client left');
      });
      await withServer(s.handler, async (server) => {
        const { req, res } = await open(`${server.url}/legacy/`);
        await new Promise((resolve) => res.once('data', resolve));
        req.destroy();
        const finished = await s.firstFinished.promise;
        assert.equal(finished.outcome, 'aborted');
      });
      assert.deepEqual(s.reports, []);
      assert.equal(s.finished.length, 1);
    });
  });

  describe('an Express 5 app', () => {
    it('whose async route throws, with its own error handler: Express answers its 500, tsgi reports nothing, the request finishes once', {
      timeout: 10_000,
    }, async () => {
      const seenByExpress: unknown[] = [];
      const app = express();
      app.get('/boom', async () => {
        throw new Error('route failed');
      });
      app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        seenByExpress.push(error);
        res.status(500).type('text/plain').send('Express error page');
      });
      const s = site(app);
      await withServer(s.handler, async (server) => {
        const response = await get(`${server.url}/legacy/boom`);
        assert.equal(response.status, 500);
        assert.equal(response.body.toString(), 'Express error page');
        const finished = await s.firstFinished.promise;
        assert.equal(finished.status, 500);
        assert.equal(finished.outcome, 'completed');
        assert.equal(finished.error, undefined);
      });
      assert.equal(seenByExpress.length, 1, 'Express reports it, through its error handler');
      assert.deepEqual(s.exceptions, []);
      assert.deepEqual(s.reports, []);
      assert.equal(s.finished.length, 1);
    });

    it('whose async route throws, without an error handler: Express passes it on, and tsgi answers and reports it', {
      timeout: 10_000,
    }, async () => {
      const app = express();
      app.get('/boom', async () => {
        throw new Error('route failed');
      });
      const s = site(app);
      await withServer(s.handler, async (server) => {
        const response = await get(`${server.url}/legacy/boom`);
        assert.equal(response.status, 500);
        assert.equal(response.body.toString(), 'Internal Server Error\n');
        await s.firstFinished.promise;
      });
      assert.equal(s.exceptions.length, 1);
      assert.deepEqual(
        s.reports.map(({ error, where }) => [String(error), where]),
        [['Error: route failed', 'application']],
      );
      assert.equal(s.finished.length, 1);
    });
  });
});

describe('fromNodeListener() response headers', () => {
  it('drops the fields the listener names in its Connection header, and the standard hop-by-hop ones', async () => {
    const s = site((_req, res) => {
      res.setHeader('Connection', 'X-Internal-Hop, close');
      res.setHeader('X-Internal-Hop', 'for the next hop only');
      res.setHeader('Keep-Alive', 'timeout=99');
      res.setHeader('Proxy-Connection', 'keep-alive');
      res.setHeader('Upgrade', 'h2c');
      res.setHeader('X-Kept', 'end to end');
      res.end('ok');
    });
    await withServer(s.handler, async (server) => {
      const response = await get(`${server.url}/legacy/`);
      assert.equal(response.status, 200);
      assert.equal(response.body.toString(), 'ok');
      assert.equal(response.headers['x-kept'], 'end to end');
      assert.equal(response.headers['x-internal-hop'], undefined);
      assert.equal(response.headers['proxy-connection'], undefined);
      assert.equal(response.headers.upgrade, undefined);
      assert.notEqual(response.headers['keep-alive'], 'timeout=99');
      assert.doesNotMatch(String(response.headers.connection), /x-internal-hop/i);
      await s.firstFinished.promise;
    });
  });
});
