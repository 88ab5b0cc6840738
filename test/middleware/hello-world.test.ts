import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { helloWorld } from '../../middleware/index.ts';
import { type Application, createHandler, SignalBus } from '../../src/index.ts';
import { exchange } from '../fixtures/host.ts';

const request = (path: string, init?: RequestInit) => new Request(`http://127.0.0.1${path}`, init);
const site: Application = () => new Response('the site');

describe('helloWorld()', () => {
  describe('with the default options', () => {
    const handler = createHandler(site, { middleware: [helloWorld()], signals: new SignalBus() });

    it('answers /hello with Hello World as plain text', async () => {
      const response = await handler.fetch(request('/hello'));
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(await response.text(), 'Hello World');
    });

    it('answers /hello whatever the query', async () => {
      assert.equal(await (await handler.fetch(request('/hello?name=x'))).text(), 'Hello World');
    });

    it('passes every other path on to the application', async () => {
      for (const path of ['/', '/hello/', '/hello/world', '/hellox', '/HELLO']) {
        assert.equal(await (await handler.fetch(request(path))).text(), 'the site', path);
      }
    });
  });

  describe('with options', () => {
    it('answers the given path with the given text', async () => {
      const handler = createHandler(site, {
        middleware: [helloWorld({ path: '/healthz', text: 'ok' })],
        signals: new SignalBus(),
      });
      assert.equal(await (await handler.fetch(request('/healthz'))).text(), 'ok');
      assert.equal(await (await handler.fetch(request('/hello'))).text(), 'the site');
    });

    it('refuses a path that does not start with / when the site is built', () => {
      assert.throws(() => helloWorld({ path: 'hello' }), {
        name: 'TypeError',
        message: /path must start with '\/'/,
      });
    });
  });

  describe('wrapped by hand, WSGI style', () => {
    it('is a middleware: application = helloWorld()(application)', async () => {
      const application = helloWorld()(site);
      assert.equal(application.name, 'helloWorld');
      const { text, info } = await exchange(application, request('/hello'));
      assert.equal(text, 'Hello World');
      assert.equal(info.outcome, 'completed');
    });
  });

  describe('in the request lifecycle', () => {
    it('fires request_started and request_finished once for the request it answers', async () => {
      const bus = new SignalBus();
      const seen: string[] = [];
      bus.connect('request_started', () => {
        seen.push('started');
      });
      bus.connect('request_finished', ({ status, outcome }) => {
        seen.push(`finished ${status} ${outcome}`);
      });
      const handler = createHandler(site, { middleware: [helloWorld()], signals: bus });
      await exchange(handler, request('/hello'));
      assert.deepEqual(seen, ['started', 'finished 200 completed']);
    });
  });
});
