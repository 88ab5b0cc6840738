/**
 * The URL an application sees, from the request line and the Host header (src/node/connection.ts):
 * a Host that is not `uri-host [":" port]` is answered 400 (RFC 9112 §3.2, RFC 9110 §7.2), an
 * absolute-form target names the host but never the scheme (RFC 9112 §3.2.2), and a request without
 * Host (HTTP/1.0) is named after the interface and port it came in on.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { type Application, toNodeListener } from '../../src/index.ts';
import { withServer } from '../fixtures/client.ts';
import { send, TEST_TLS } from '../fixtures/raw.ts';

/**
 * An application that answers with the URL it saw, after checking that undici takes the request as
 * it is (a copy has the same URL: it was written as the URL parser writes it).
 */
function urlEcho(seen: string[] = []): Application {
  return (request) => {
    seen.push(request.url);
    const copy = request.clone().url;
    if (copy !== request.url) throw new Error(`undici wrote ${request.url} as ${copy}`);
    return new Response(request.url);
  };
}

function get(target: string, host: string | undefined, version = '1.1'): string {
  const lines = [`GET ${target} HTTP/${version}`];
  if (host !== undefined) lines.push(`Host: ${host}`);
  lines.push('Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

describe('the Host header', () => {
  it('is answered 400, without calling the application, when it is not uri-host [":" port]', async () => {
    const seen: string[] = [];
    await withServer(urlEcho(seen), async (server) => {
      const hosts = [
        'a/b',
        'x?y',
        'x#y',
        'evil@host.com',
        'user:pass@host.com',
        'host with spaces',
        'a\tb',
        '<script>',
        'a\\b',
        'a:',
        'a:x',
        'a:1:2',
        'a:99999',
        'a:65536',
        '[::1',
        '[not-ip]',
        'a%2fb',
        'xn--a.example',
      ];
      for (const host of hosts) {
        const reply = await send(server.port, get('/', host));
        assert.equal(reply.status, 400, `Host: ${JSON.stringify(host)}`);
      }
      assert.deepEqual(seen, []);
    });
  });

  it('is answered 400 when the request has two Host lines', async () => {
    const seen: string[] = [];
    await withServer(urlEcho(seen), async (server) => {
      const reply = await send(
        server.port,
        'GET / HTTP/1.1\r\nHost: one.example\r\nhost: two.example\r\nConnection: close\r\n\r\n',
      );
      assert.equal(reply.status, 400);
      assert.deepEqual(seen, []);
    });
  });

  it('makes the origin of a valid one as the URL parser writes it', async () => {
    await withServer(urlEcho(), async (server) => {
      const cases: [string, string][] = [
        ['localhost', 'http://localhost/p?q=1'],
        ['example.com:8080', 'http://example.com:8080/p?q=1'],
        ['Example.COM:80', 'http://example.com/p?q=1'],
        ['example.com:80', 'http://example.com/p?q=1'],
        ['example.com:0443', 'http://example.com:443/p?q=1'],
        ['my_host.internal', 'http://my_host.internal/p?q=1'],
        ['127.0.0.1:3000', 'http://127.0.0.1:3000/p?q=1'],
        ['[::1]:3000', 'http://[::1]:3000/p?q=1'],
        ['ex%41mple.com', 'http://example.com/p?q=1'],
      ];
      for (const [host, url] of cases) {
        const reply = await send(server.port, get('/p?q=1', host));
        assert.equal(reply.status, 200, `Host: ${host}`);
        assert.equal(reply.body, url, `Host: ${host}`);
      }
    });
  });

  it('is the local address and port for an HTTP/1.0 request without one', async () => {
    await withServer(urlEcho(), async (server) => {
      const reply = await send(server.port, get('/old', undefined, '1.0'));
      assert.equal(reply.status, 200);
      assert.equal(reply.body, `http://127.0.0.1:${server.port}/old`);
    });
  });

  it('keeps its cached origin per connection, and still checks each request', async () => {
    const seen: string[] = [];
    await withServer(urlEcho(seen), async (server) => {
      const reply = await send(
        server.port,
        'GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n' +
          'GET /2 HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n' +
          'GET /3 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n',
      );
      assert.equal(reply.status, 200);
      assert.equal(seen[0], 'http://a.example/1');
      assert.ok(
        !seen.includes('http://a.example/2'),
        'the request with two Host lines never reached the app',
      );
    });
  });
});

describe('an absolute-form request target', () => {
  it('names the host: its authority wins over the Host header (RFC 9112 §3.2.2)', async () => {
    await withServer(urlEcho(), async (server) => {
      const reply = await send(server.port, get('http://other.example:8080/x?y=1', 'ignored.example'));
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'http://other.example:8080/x?y=1');
      const bare = await send(server.port, get('http://Other.Example', 'ignored.example'));
      assert.equal(bare.body, 'http://other.example/');
      const query = await send(server.port, get('http://other.example?y=1', 'ignored.example'));
      assert.equal(query.body, 'http://other.example/?y=1');
    });
  });

  it('never changes the scheme of a plain socket: https:// in the line is still http', async () => {
    await withServer(urlEcho(), async (server) => {
      const reply = await send(server.port, get('https://other.example/x', 'a.example'));
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'http://other.example/x');
    });
  });

  it('never changes the scheme of a TLS socket: http:// in the line is still https', async () => {
    const server = https.createServer(TEST_TLS, toNodeListener(urlEcho()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const absolute = await send(port, get('http://other.example/x', 'a.example'), { secure: true });
      assert.equal(absolute.status, 200);
      assert.equal(absolute.body, 'https://other.example/x');
      const origin = await send(port, get('/y', 'a.example'), { secure: true });
      assert.equal(origin.body, 'https://a.example/y');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('is answered 400 when it carries userinfo, so request.clone() never meets a URL with credentials', async () => {
    const seen: string[] = [];
    await withServer(urlEcho(seen), async (server) => {
      for (const target of ['http://user@other.example/x', 'http://user:pass@other.example/x']) {
        const reply = await send(server.port, get(target, 'a.example'));
        assert.equal(reply.status, 400, target);
      }
      assert.deepEqual(seen, []);
    });
  });

  it('is answered 400 unless it is http or https, or when its host is empty or invalid', async () => {
    const seen: string[] = [];
    await withServer(urlEcho(seen), async (server) => {
      for (const target of [
        'file:///etc/passwd',
        'ftp://other.example/x',
        'ws://other.example/x',
        'javascript:alert(1)',
        'http:///x',
        'http://a b/x',
        'http://other.example:99999/x',
        'http://xn--a.example/x',
      ]) {
        const reply = await send(server.port, get(target, 'a.example'));
        assert.equal(reply.status, 400, target);
      }
      assert.deepEqual(seen, []);
    });
  });
});

describe('an origin-form request target', () => {
  it('is joined to the origin as the URL parser would write it', async () => {
    await withServer(urlEcho(), async (server) => {
      const cases: [string, string][] = [
        ['/plain/path?x=1', 'http://a.example/plain/path?x=1'],
        ['/a/../b', 'http://a.example/b'],
        ['/%2e%2e/c', 'http://a.example/c'],
        ['/sp%20ace', 'http://a.example/sp%20ace'],
      ];
      for (const [target, url] of cases) {
        const reply = await send(server.port, get(target, 'a.example'));
        assert.equal(reply.body, url, target);
      }
    });
  });

  it('OPTIONS * is the origin itself', async () => {
    await withServer(urlEcho(), async (server) => {
      const reply = await send(
        server.port,
        'OPTIONS * HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n',
      );
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'http://a.example/');
    });
  });
});
