/**
 * The global `Response` is tsgi's FastResponse only while a server that was allowed to swap it runs:
 * `serve()` by default, `toNodeListener()` only when asked. Either way the application's responses are
 * written whole, and code that subclasses or compares against `Response` keeps working.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createHandler, FastResponse, serve, toNodeListener } from '../../src/index.ts';
import { GlobalResponse } from '../../src/node/fast-response.ts';

const app = createHandler(
  () => new Response('hello', { headers: { 'content-type': 'text/plain', 'x-global': globalName() } }),
);

function globalName(): string {
  return globalThis.Response === GlobalResponse
    ? 'undici'
    : (globalThis.Response as unknown) === FastResponse
      ? 'fast'
      : 'other';
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

describe('serve()', () => {
  it('swaps in FastResponse while it runs, by default, and puts the original back on close', async () => {
    assert.equal(globalName(), 'undici');
    const server = await serve(app, { port: 0 });
    try {
      assert.equal(globalName(), 'fast');
      const response = await fetch(`${server.url}/`);
      assert.equal(response.headers.get('x-global'), 'fast');
      assert.equal(response.headers.get('content-length'), '5');
      assert.equal(await response.text(), 'hello');
    } finally {
      await server.close();
    }
    assert.equal(globalName(), 'undici');
  });

  it('leaves the global alone with fastResponse: false, and writes undici responses whole', async () => {
    const server = await serve(app, { port: 0, fastResponse: false });
    try {
      assert.equal(globalName(), 'undici');
      const response = await fetch(`${server.url}/`);
      assert.equal(response.headers.get('x-global'), 'undici');
      assert.equal(response.headers.get('content-length'), '5');
      assert.equal(await response.text(), 'hello');
    } finally {
      await server.close();
    }
    assert.equal(globalName(), 'undici');
  });

  it('keeps a subclass of Response working (a NextResponse-like class made before or while serving)', async () => {
    class Before extends Response {
      marker = 'before';
    }
    const server = await serve(
      createHandler(() => {
        class During extends Response {
          marker = 'during';
        }
        const before = new Before('b');
        const during = new During('d');
        assert.ok(before instanceof Response && during instanceof Response);
        return new Response(`${before.marker}+${during.marker}`);
      }),
      { port: 0 },
    );
    try {
      assert.equal(await (await fetch(`${server.url}/`)).text(), 'before+during');
    } finally {
      await server.close();
    }
  });
});

describe('toNodeListener()', () => {
  it('leaves a foreign host its global Response by default', async () => {
    const host = createServer(toNodeListener(app));
    const url = await listen(host);
    try {
      const response = await fetch(`${url}/`);
      assert.equal(response.headers.get('x-global'), 'undici');
      assert.equal(await response.text(), 'hello');
      assert.equal(globalName(), 'undici');
    } finally {
      await close(host);
    }
  });

  it('swaps it while the host serves when asked with fastResponse: true', async () => {
    const host = createServer(toNodeListener(app, { fastResponse: true }));
    const url = await listen(host);
    try {
      const response = await fetch(`${url}/`);
      assert.equal(response.headers.get('x-global'), 'fast');
      assert.equal(await response.text(), 'hello');
    } finally {
      await close(host);
    }
    assert.equal(globalName(), 'undici', 'the original is back once the host closed');
  });
});
