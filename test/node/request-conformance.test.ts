/**
 * The `Request` an application gets from serve() (a NodeRequest, src/node/request.ts) behaves as
 * undici's own where an application can tell: a new body replaces a used one in `new Request()`,
 * `formData()` reads the content type the header list has when it is called, a `Content-Length: 0`
 * request has an empty body rather than none, and the header list is what the client sent,
 * hop-by-hop fields included (the adapter is an origin server's, not a proxy's: RFC 9110 §7.6.1
 * leaves removing them to whoever forwards the request).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withServer } from '../fixtures/client.ts';
import { send } from '../fixtures/raw.ts';

/** What an application found, sent back as JSON. */
async function probe(url: string, init: RequestInit): Promise<Record<string, unknown>> {
  const response = await fetch(url, init);
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as Record<string, unknown>;
}

/** The error a call throws (its name), or what it returns. */
async function outcome(run: () => unknown): Promise<unknown> {
  try {
    return await run();
  } catch (error) {
    return (error as Error).name;
  }
}

describe('new Request(request, init) after the application read request', () => {
  it('takes the new body in place of the used one, and refuses a copy without one, as undici does', async () => {
    await withServer(
      async (request) => {
        const undici = new Request('http://127.0.0.1/', { method: 'POST', body: 'undici' });
        const [ourBody, theirBody] = [request.body, undici.body];
        const read = [await request.text(), await undici.text()];
        const ours = {
          replaced: await outcome(() => new Request(request, { body: 'replacement' }).text()),
          copied: await outcome(() => new Request(request)),
          bodyUsed: request.bodyUsed,
          sameBody: request.body === ourBody,
        };
        const theirs = {
          replaced: await outcome(() => new Request(undici, { body: 'replacement' }).text()),
          copied: await outcome(() => new Request(undici)),
          bodyUsed: undici.bodyUsed,
          sameBody: undici.body === theirBody,
        };
        return Response.json({ read, ours, theirs });
      },
      async (server) => {
        const found = await probe(server.url, { method: 'POST', body: 'original' });
        assert.deepEqual(found.read, ['original', 'undici']);
        assert.deepEqual(found.ours, {
          replaced: 'replacement',
          copied: 'TypeError',
          bodyUsed: true,
          sameBody: true,
        });
        assert.deepEqual(found.ours, found.theirs);
      },
    );
  });

  it('takes a new body while the application still holds a reader on the old one', async () => {
    await withServer(
      async (request) => {
        const reader = request.body!.getReader();
        const first = await reader.read();
        const copy = new Request(request, { body: 'replacement' });
        const rest: string[] = [];
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
          rest.push(new TextDecoder().decode(chunk.value));
        }
        return Response.json({
          first: new TextDecoder().decode(first.value),
          rest: rest.join(''),
          copy: await copy.text(),
          locked: request.body!.locked,
        });
      },
      async (server) => {
        const found = await probe(server.url, { method: 'POST', body: 'original' });
        assert.deepEqual(found, { first: 'original', rest: '', copy: 'replacement', locked: true });
      },
    );
  });
});

describe('formData()', () => {
  it('uses the content type the application set on request.headers, as undici does', async () => {
    await withServer(
      async (request) => {
        request.headers.set('content-type', 'application/x-www-form-urlencoded');
        const undici = new Request('http://127.0.0.1/', {
          method: 'POST',
          body: 'a=1',
          headers: { 'content-type': 'text/plain' },
        });
        undici.headers.set('content-type', 'application/x-www-form-urlencoded');
        return Response.json({
          ours: Object.fromEntries(await request.formData()),
          theirs: Object.fromEntries(await undici.formData()),
        });
      },
      async (server) => {
        const found = await probe(server.url, {
          method: 'POST',
          body: 'a=1&b=two',
          headers: { 'content-type': 'text/plain' },
        });
        assert.deepEqual(found, { ours: { a: '1', b: 'two' }, theirs: { a: '1' } });
      },
    );
  });

  it('still reads the content type the client sent when nothing changed it', async () => {
    await withServer(
      async (request) => Response.json(Object.fromEntries(await request.formData())),
      async (server) => {
        const form = new FormData();
        form.set('name', 'value');
        assert.deepEqual(await probe(server.url, { method: 'POST', body: form }), { name: 'value' });
      },
    );
  });
});

describe('a request body of length 0', () => {
  const describeBody = async (request: Request): Promise<Response> => {
    const body = request.body;
    const isStream = body instanceof ReadableStream;
    const text = await request.text();
    return Response.json({ isStream, text, bodyUsed: request.bodyUsed });
  };

  it('is an empty stream that ends at once, not null, with Content-Length: 0 (as undici gives)', async () => {
    await withServer(describeBody, async (server) => {
      const raw = await send(
        server.port,
        'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
      );
      assert.deepEqual(JSON.parse(raw.body), { isStream: true, text: '', bodyUsed: true });
      const fetched = await probe(server.url, { method: 'POST', body: '' });
      assert.deepEqual(fetched, { isStream: true, text: '', bodyUsed: true });
      const undici = new Request('http://127.0.0.1/', { method: 'POST', body: '' });
      assert.ok(undici.body instanceof ReadableStream, 'undici gives an empty body a stream too');
    });
  });

  it('is no body at all without Content-Length and Transfer-Encoding (RFC 9112 §6.3)', async () => {
    await withServer(describeBody, async (server) => {
      const raw = await send(server.port, 'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      assert.deepEqual(JSON.parse(raw.body), { isStream: false, text: '', bodyUsed: false });
    });
  });
});

describe('hop-by-hop request fields', () => {
  const headerEcho = (request: Request): Response => Response.json(Object.fromEntries(request.headers));

  it('are in request.headers as the client sent them, those Connection names too', async () => {
    await withServer(headerEcho, async (server) => {
      const reply = await send(
        server.port,
        'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n' +
          'Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\r\n',
      );
      assert.equal(reply.status, 200);
      assert.equal(reply.headers.connection, 'close');
      const headers = JSON.parse(reply.body) as Record<string, string>;
      assert.equal(headers.connection, 'close, X-Hop');
      assert.equal(headers['x-hop'], '1');
      assert.equal(headers['keep-alive'], 'timeout=5');
      assert.equal(headers.te, 'trailers');
      assert.equal(headers['proxy-connection'], 'keep-alive');
    });
  });

  it('do not change what the connection does: a chunked upload is still read, kept alive', async () => {
    await withServer(
      async (request) =>
        Response.json({ te: request.headers.get('transfer-encoding'), body: await request.text() }),
      async (server) => {
        const found = await probe(server.url, {
          method: 'POST',
          body: new Blob(['chunked body']).stream(),
          duplex: 'half',
        } as RequestInit);
        assert.deepEqual(found, { te: 'chunked', body: 'chunked body' });
      },
    );
  });
});
