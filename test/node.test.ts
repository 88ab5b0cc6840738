/**
 * The Node adapter over real sockets: what the application gets, what the client gets, and the
 * signals each request emits. Disconnects, keep-alive and close() have their own files.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import express from 'express';
import {
  type Application,
  createHandler,
  PayloadTooLargeError,
  type RequestFinishedEvent,
  SignalBus,
  serve,
  signals,
  toNodeListener,
} from '../src/index.ts';
import { Connection, getRequest, startSite } from './fixtures/node-site.ts';
import { recordingStream } from './fixtures/streams.ts';

function assertFinishedOnce(
  site: { started: number; finished: RequestFinishedEvent[]; handler: { inFlight: number } },
  expected: Partial<Pick<RequestFinishedEvent, 'status' | 'bytesSent' | 'outcome'>>,
): RequestFinishedEvent {
  assert.equal(site.started, 1, 'request_started once');
  assert.equal(site.finished.length, 1, 'request_finished once');
  assert.equal(site.handler.inFlight, 0, 'inFlight back to 0');
  const event = site.finished[0]!;
  for (const [key, value] of Object.entries(expected)) {
    assert.equal(event[key as keyof typeof expected], value, `request_finished ${key}`);
  }
  return event;
}

describe('serve()', () => {
  it('listens on a free port when given port 0, and its url names the real port', async () => {
    const site = await startSite(() => new Response('hello'));
    try {
      assert.notEqual(site.server.port, 0);
      assert.equal(site.server.url, `http://127.0.0.1:${site.server.port}`);
      const response = await fetch(`${site.server.url}/`);
      assert.equal(await response.text(), 'hello');
    } finally {
      await site.close();
    }
  });

  it('wraps a plain application in createHandler so its signals fire', async () => {
    const seen: string[] = [];
    const disconnect = signals.connect('request_finished', ({ request, outcome }) => {
      seen.push(`${new URL(request.url).pathname} ${outcome}`);
    });
    const server = await serve(() => new Response('plain'), { port: 0 });
    try {
      const response = await fetch(`${server.url}/plain`);
      assert.equal(await response.text(), 'plain');
    } finally {
      await server.close();
      disconnect();
    }
    assert.deepEqual(seen, ['/plain completed']);
  });

  it('rejects when the port is taken, and leaves the global Response alone', async () => {
    const original = globalThis.Response;
    const first = await serve(() => new Response('first'), { port: 0 });
    try {
      await assert.rejects(
        serve(() => new Response('second'), { port: first.port }),
        { code: 'EADDRINUSE' },
      );
    } finally {
      await first.close();
    }
    assert.equal(globalThis.Response, original);
  });

  it('sets Node’s timeouts: sensible defaults, each an option', async () => {
    const defaults = await serve(() => new Response('x'), { port: 0 });
    const chosen = await serve(() => new Response('x'), {
      port: 0,
      headersTimeout: 1000,
      requestTimeout: 2000,
      keepAliveTimeout: 3000,
    });
    try {
      const { headersTimeout, requestTimeout, keepAliveTimeout } = defaults.server;
      assert.deepEqual([headersTimeout, requestTimeout, keepAliveTimeout], [10_000, 300_000, 5000]);
      assert.deepEqual(
        [chosen.server.headersTimeout, chosen.server.requestTimeout, chosen.server.keepAliveTimeout],
        [1000, 2000, 3000],
      );
    } finally {
      await defaults.close();
      await chosen.close();
    }
  });

  it('refuses an application that is not a function, naming the mistake', async () => {
    await assert.rejects(serve({} as Application, { port: 0 }), /must be a function/);
  });
});

describe('the request the application gets', () => {
  it('is a Request with the method, absolute URL, headers and client address', async () => {
    let seen: Record<string, unknown> = {};
    const site = await startSite((request, context) => {
      seen = {
        isRequest: request instanceof Request,
        tag: Object.prototype.toString.call(request),
        method: request.method,
        url: request.url,
        accept: request.headers.get('accept'),
        repeated: request.headers.get('x-repeated'),
        remoteAddress: context.remoteAddress,
        body: request.body,
        signalAborted: request.signal.aborted,
      };
      return new Response('ok');
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(
        'GET /path/to?q=1&r=%20x HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\nX-Repeated: a\r\nX-Repeated: b\r\n\r\n',
      );
      assert.equal((await connection.next()).status, 200);
      connection.close();
      assert.deepEqual(seen, {
        isRequest: true,
        tag: '[object Request]',
        method: 'GET',
        url: 'http://127.0.0.1/path/to?q=1&r=%20x',
        accept: 'text/plain',
        repeated: 'a, b',
        remoteAddress: '127.0.0.1',
        body: null,
        signalAborted: false,
      });
    } finally {
      await site.close();
    }
  });

  it('has the URL the URL parser gives for unusual targets and hosts', async () => {
    const urls: string[] = [];
    const site = await startSite((request) => {
      urls.push(request.url);
      return new Response('ok');
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/a/./b/../c'));
      await connection.next();
      connection.write('GET /x HTTP/1.1\r\nHost: EXAMPLE.com:80\r\n\r\n');
      await connection.next();
      connection.write('GET http://proxy.example/abs?x HTTP/1.1\r\nHost: other\r\n\r\n');
      await connection.next();
      connection.write("GET /q?it's HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
      await connection.next();
      connection.close();
      assert.deepEqual(urls, [
        'http://127.0.0.1/a/c',
        'http://example.com/x',
        'http://proxy.example/abs?x',
        'http://[::1]:8080/q?it%27s',
      ]);
    } finally {
      await site.close();
    }
  });

  it('is answered 400 by the server, without reaching the site, when its Host makes no URL', async () => {
    const site = await startSite(() => new Response('never'));
    try {
      const connection = await Connection.open(site.server.port);
      connection.write('GET / HTTP/1.1\r\nHost: bad host\r\n\r\n');
      const response = await connection.next();
      assert.equal(response.status, 400);
      await connection.closed;
      assert.equal(site.started, 0);
    } finally {
      await site.close();
    }
  });

  it('reads its body only when the application reads it: text(), json(), formData(), the stream', async () => {
    const site = await startSite(async (request) => {
      const kind = new URL(request.url).pathname;
      if (kind === '/text') return new Response(`text:${await request.text()}`);
      if (kind === '/json') return new Response(`json:${JSON.stringify(await request.json())}`);
      if (kind === '/form') return new Response(`form:${(await request.formData()).get('a')}`);
      let total = 0;
      for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>)
        total += chunk.byteLength;
      return new Response(`stream:${total} used:${request.bodyUsed}`);
    });
    try {
      const post = async (path: string, body: BodyInit, type?: string) => {
        const headers = type === undefined ? undefined : { 'content-type': type };
        const response = await fetch(`${site.server.url}${path}`, { method: 'POST', body, headers });
        return response.text();
      };
      assert.equal(await post('/text', 'hello'), 'text:hello');
      assert.equal(await post('/json', '{"a":[1,2]}', 'application/json'), 'json:{"a":[1,2]}');
      assert.equal(await post('/form', 'a=1&b=2', 'application/x-www-form-urlencoded'), 'form:1');
      assert.equal(await post('/stream', new Uint8Array(200_000)), 'stream:200000 used:true');
      assert.equal(site.finished.length, 4);
    } finally {
      await site.close();
    }
  });

  it('rejects a second read of its body, as a Request does', async () => {
    const site = await startSite(async (request) => {
      await request.text();
      const second = await request.text().then(
        () => 'read twice',
        (error: Error) => error.name,
      );
      return new Response(`${request.bodyUsed} ${second}`);
    });
    try {
      const response = await fetch(site.server.url, { method: 'POST', body: 'once' });
      assert.equal(await response.text(), 'true TypeError');
    } finally {
      await site.close();
    }
  });

  it('can be cloned, copied with new Request() and forwarded with fetch()', async () => {
    const upstream = await startSite(async (request) => {
      return new Response(
        `${request.method} ${new URL(request.url).pathname} ${request.headers.get('x-a')} ${await request.text()}`,
      );
    });
    const site = await startSite(async (request) => {
      const clone = request.clone();
      const copy = new Request(request);
      const forwarded = await fetch(new Request(`${upstream.server.url}/up`, copy));
      return new Response(`${await clone.text()} | ${await forwarded.text()}`);
    });
    try {
      const response = await fetch(`${site.server.url}/down`, {
        method: 'PUT',
        body: 'payload',
        headers: { 'x-a': 'A' },
      });
      assert.equal(await response.text(), 'payload | PUT /up A payload');
    } finally {
      await site.close();
      await upstream.close();
    }
  });

  it('passes straight to fetch() as it is', async () => {
    const upstream = await startSite(async (request) => new Response(`upstream got ${await request.text()}`));
    let target = '';
    const site = await startSite((request) => fetch(target, request));
    target = `${upstream.server.url}/x`;
    try {
      const response = await fetch(site.server.url, { method: 'POST', body: 'forward me' });
      assert.equal(await response.text(), 'upstream got forward me');
    } finally {
      await site.close();
      await upstream.close();
    }
  });
});

describe('request bodies past maxBodySize', () => {
  it('are answered 413 when Content-Length says so, whatever the application returned', async () => {
    let error: unknown;
    const site = await startSite(
      async (request) => {
        try {
          await request.arrayBuffer();
        } catch (caught) {
          error = caught;
        }
        return new Response('the application answered');
      },
      { maxBodySize: 1024 },
    );
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(
        `POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4096\r\n\r\n${'x'.repeat(2048)}`,
      );
      const response = await connection.next();
      assert.equal(response.status, 413);
      assert.equal(response.headers.connection?.[0], 'close');
      connection.socket.end('x'.repeat(2048));
      await connection.closed;
      assert.ok(error instanceof PayloadTooLargeError);
      await site.finishedCount(1);
      assertFinishedOnce(site, { status: 413, outcome: 'completed' });
    } finally {
      await site.close();
    }
  });

  it('are answered 413 when a chunked upload passes the limit as it is read', async () => {
    const site = await startSite((request) => request.text().then((text) => new Response(text)), {
      maxBodySize: 1000,
    });
    try {
      const response = await fetch(site.server.url, {
        method: 'POST',
        body: new Blob(['y'.repeat(5000)]).stream(),
        duplex: 'half',
      } as RequestInit);
      assert.equal(response.status, 413);
      await response.arrayBuffer();
      await site.finishedCount(1);
      const event = assertFinishedOnce(site, { status: 413, outcome: 'completed' });
      assert.ok(event.error instanceof PayloadTooLargeError, 'the exception the application raised');
    } finally {
      await site.close();
    }
  });

  it('are fine up to the limit', async () => {
    const site = await startSite((request) => request.text().then((text) => new Response(`${text.length}`)), {
      maxBodySize: 1000,
    });
    try {
      const response = await fetch(site.server.url, { method: 'POST', body: 'z'.repeat(1000) });
      assert.equal(await response.text(), '1000');
    } finally {
      await site.close();
    }
  });
});

describe('writing the response', () => {
  it('sends status, status text and every header, repeated Set-Cookie kept', async () => {
    const site = await startSite(() => {
      const headers = new Headers({ 'x-one': '1' });
      headers.append('set-cookie', 'a=1; Path=/');
      headers.append('set-cookie', 'b=2; HttpOnly');
      headers.append('x-list', 'p');
      headers.append('x-list', 'q');
      return new Response('created', { status: 201, statusText: 'Made It', headers });
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/'));
      const response = await connection.next();
      connection.close();
      assert.equal(response.status, 201);
      assert.deepEqual(response.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly']);
      assert.deepEqual(response.headers['x-one'], ['1']);
      assert.deepEqual(response.headers['x-list'], ['p, q']);
      assert.deepEqual(response.headers['content-length'], ['7']);
      assert.deepEqual(response.headers['content-type'], ['text/plain;charset=UTF-8']);
      assert.equal(response.body.toString(), 'created');
      const fetched = await fetch(site.server.url);
      assert.equal(fetched.statusText, 'Made It');
      assert.deepEqual(fetched.headers.getSetCookie(), ['a=1; Path=/', 'b=2; HttpOnly']);
      await fetched.text();
    } finally {
      await site.close();
    }
  });

  it('sends string, bytes and empty bodies with a Content-Length, and a stream chunked', async () => {
    const site = await startSite((request) => {
      switch (new URL(request.url).pathname) {
        case '/string':
          return new Response('héllo');
        case '/bytes':
          return new Response(new Uint8Array([1, 2, 3]));
        case '/empty':
          return new Response(null, { status: 200 });
        default:
          return new Response(recordingStream({ chunks: 2 }).stream);
      }
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(
        getRequest('/string') + getRequest('/bytes') + getRequest('/empty') + getRequest('/stream'),
      );
      const [string, bytes, empty, stream] = [
        await connection.next(),
        await connection.next(),
        await connection.next(),
        await connection.next(),
      ];
      connection.close();
      assert.deepEqual(string!.headers['content-length'], ['6']);
      assert.equal(string!.body.toString(), 'héllo');
      assert.deepEqual(bytes!.headers['content-length'], ['3']);
      assert.deepEqual([...bytes!.body], [1, 2, 3]);
      assert.deepEqual(empty!.headers['content-length'], ['0']);
      assert.deepEqual(stream!.headers['transfer-encoding'], ['chunked']);
      assert.equal(stream!.body.toString(), 'chunk 0;chunk 1;');
      await site.finishedCount(4);
      assert.deepEqual(
        site.finished.map((event) => [event.status, event.bytesSent, event.outcome]),
        [
          [200, 6, 'completed'],
          [200, 3, 'completed'],
          [200, 0, 'completed'],
          [200, 16, 'completed'],
        ],
      );
    } finally {
      await site.close();
    }
  });

  it('sends the true length of fixed data whatever a header said, and a Content-Length to HTTP/1.0 clients', async () => {
    const site = await startSite((request) =>
      new URL(request.url).pathname === '/lying'
        ? new Response('four', { headers: { 'content-length': '99', 'x-kept': 'yes' } })
        : new Response('plain text'),
    );
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/lying') + getRequest('/plain') + getRequest('/plain'));
      const [lying, first, second] = [
        await connection.next(),
        await connection.next(),
        await connection.next(),
      ];
      connection.close();
      assert.deepEqual(lying.headers['content-length'], ['4']);
      assert.deepEqual(lying.headers['x-kept'], ['yes']);
      assert.equal(lying.body.toString(), 'four');
      for (const plain of [first, second]) {
        assert.deepEqual(plain.headers['content-type'], ['text/plain;charset=UTF-8']);
        assert.deepEqual(plain.headers['content-length'], ['10']);
        assert.equal(plain.body.toString(), 'plain text');
      }

      // HTTP/1.0: Node would otherwise end the body by closing the connection.
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(site.server.port, '127.0.0.1');
        let received = '';
        socket.on('data', (data) => {
          received += data.toString('latin1');
        });
        socket.on('error', reject);
        socket.on('close', () => resolve(received));
        socket.write('GET /plain HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n');
      });
      assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(raw, /\r\ncontent-length: 10\r\n/i);
      assert.ok(raw.endsWith('\r\n\r\nplain text'), raw);
      await site.finishedCount(4);
    } finally {
      await site.close();
    }
  });

  it('sends undici responses made before serving, Response.json() and Response.redirect()', async () => {
    const made = new Response('made earlier', { headers: { 'x-early': '1' } });
    const site = await startSite((request) => {
      switch (new URL(request.url).pathname) {
        case '/early':
          return made;
        case '/json':
          return Response.json({ ok: true }, { status: 202 });
        default:
          return Response.redirect('http://example.com/elsewhere', 307);
      }
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/early') + getRequest('/json') + getRequest('/redirect'));
      const early = await connection.next();
      const json = await connection.next();
      const redirect = await connection.next();
      connection.close();
      assert.equal(early.body.toString(), 'made earlier');
      assert.deepEqual(early.headers['x-early'], ['1']);
      assert.equal(json.status, 202);
      assert.deepEqual(json.headers['content-type'], ['application/json']);
      assert.equal(json.body.toString(), '{"ok":true}');
      assert.equal(redirect.status, 307);
      assert.deepEqual(redirect.headers.location, ['http://example.com/elsewhere']);
    } finally {
      await site.close();
    }
  });

  it('sends no body for HEAD, never reads the stream it was given and cancels it', async () => {
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const site = await startSite((request) =>
      new URL(request.url).pathname === '/stream'
        ? new Response(source.stream)
        : new Response('twelve bytes'),
    );
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(
        getRequest('/stream', {}, 'HEAD') + getRequest('/text', {}, 'HEAD') + getRequest('/after'),
        [true, true, false],
      );
      const stream = await connection.next();
      const text = await connection.next();
      const after = await connection.next();
      connection.close();
      assert.equal(stream.status, 200);
      assert.deepEqual(text.headers['content-length'], ['12']);
      assert.equal(
        after.body.toString(),
        'twelve bytes',
        'the next response is framed right: no body bytes were sent',
      );
      await site.finishedCount(3);
      assert.equal(source.pulls, 0, 'the source was never read');
      assert.equal(source.cancelled, true, 'the source was cancelled');
      const byPath = Object.fromEntries(
        site.finished.map((event) => [
          new URL(event.request.url).pathname,
          [event.status, event.bytesSent, event.outcome],
        ]),
      );
      assert.deepEqual(byPath, {
        '/stream': [200, 0, 'completed'],
        '/text': [200, 0, 'completed'],
        '/after': [200, 12, 'completed'],
      });
    } finally {
      await site.close();
    }
  });

  for (const status of [204, 304]) {
    it(`sends no body and no Content-Length for ${status}, and keeps the connection usable`, async () => {
      const site = await startSite((request) =>
        new URL(request.url).pathname === '/after'
          ? new Response('after')
          : new Response(null, { status, headers: { etag: '"v1"' } }),
      );
      try {
        const connection = await Connection.open(site.server.port);
        connection.write(getRequest('/') + getRequest('/after'));
        const first = await connection.next();
        const after = await connection.next();
        connection.close();
        assert.equal(first.status, status);
        assert.deepEqual(first.headers.etag, ['"v1"']);
        assert.equal(first.headers['content-length'], undefined);
        assert.equal(first.headers['transfer-encoding'], undefined);
        assert.equal(after.body.toString(), 'after', 'the next response is framed right');
        await site.finishedCount(2);
        assert.deepEqual(
          [site.finished[0]!.status, site.finished[0]!.bytesSent, site.finished[0]!.outcome],
          [status, 0, 'completed'],
        );
      } finally {
        await site.close();
      }
    });
  }

  it('answers 500 when the application throws, and reports it', async () => {
    const site = await startSite(() => {
      throw new Error('boom');
    });
    try {
      const response = await fetch(site.server.url);
      assert.equal(response.status, 500);
      assert.doesNotMatch(await response.text(), /boom/);
      await site.finishedCount(1);
      const event = assertFinishedOnce(site, { status: 500, outcome: 'completed' });
      assert.equal((event.error as Error).message, 'boom');
      assert.equal(site.exceptions.length, 1);
    } finally {
      await site.close();
    }
  });

  it('answers 500 when what the application returned cannot be written, and reports why, once', async () => {
    const reported: unknown[] = [];
    const site = await startSite(() => ({ status: 200, headers: {}, body: null }) as unknown as Response);
    site.bus.onError = (error) => reported.push(error);
    try {
      const response = await fetch(site.server.url);
      assert.equal(response.status, 500);
      await response.text();
      const [event] = await site.finishedCount(1);
      assert.deepEqual([event!.status, event!.outcome], [500, 'completed']);
      assert.ok(event!.error instanceof TypeError);
      assert.equal(reported.length, 1);
      assert.equal(reported[0], event!.error);
    } finally {
      await site.close();
    }
  });

  it('reports request_finished once per request with status, bytes and outcome, and inFlight returns to 0', async () => {
    const site = await startSite(async (request) => {
      await new Promise((resolve) => setImmediate(resolve));
      return new Response(new URL(request.url).searchParams.get('text'));
    });
    try {
      const texts = ['a', 'bb', 'ccc', 'dddd', ''];
      await Promise.all(texts.map(async (text) => (await fetch(`${site.server.url}/?text=${text}`)).text()));
      await site.finishedCount(texts.length);
      assert.equal(site.started, texts.length);
      assert.equal(site.finished.length, texts.length);
      assert.deepEqual(site.finished.map((event) => event.bytesSent).sort(), [0, 1, 2, 3, 4]);
      assert.ok(site.finished.every((event) => event.outcome === 'completed' && event.status === 200));
      assert.equal(site.handler.inFlight, 0);
    } finally {
      await site.close();
    }
  });
});

describe('toNodeListener()', () => {
  it('keeps two sites apart when one keep-alive connection reaches both', async () => {
    const sites = ['a', 'b'].map((name) => {
      const bus = new SignalBus();
      const finished: RequestFinishedEvent[] = [];
      bus.connect('request_finished', (event) => {
        finished.push(event);
      });
      const handler = createHandler(() => new Response(`site ${name}`), { signals: bus });
      return { name, handler, finished, listener: toNodeListener(handler) };
    });
    const server = http.createServer((req, res) => {
      const site = req.url?.startsWith('/a') ? sites[0]! : sites[1]!;
      site.listener(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const connection = await Connection.open(port);
      for (const path of ['/a', '/b', '/a']) {
        connection.write(getRequest(path));
        assert.equal((await connection.next()).body.toString(), `site ${path.slice(1)}`);
      }
      connection.close();
      await connection.closed;
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    assert.deepEqual(
      sites.map((site) => site.finished.map((event) => event.outcome)),
      [['completed', 'completed'], ['completed']],
    );
    assert.deepEqual(
      sites.map((site) => site.handler.inFlight),
      [0, 0],
    );
  });

  it('runs a tsgi handler inside a plain node:http server, with its signals', async () => {
    const bus = new SignalBus();
    const finished: RequestFinishedEvent[] = [];
    const bothFinished = new Promise<void>((resolve) =>
      bus.connect('request_finished', (event) => {
        if (finished.push(event) === 2) resolve();
      }),
    );
    const handler = createHandler(
      (request) => new Response(`listener saw ${new URL(request.url).pathname}`),
      {
        signals: bus,
      },
    );
    const server = http.createServer(toNodeListener(handler));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const connection = await Connection.open(port);
      connection.write(getRequest('/one') + getRequest('/two'));
      assert.equal((await connection.next()).body.toString(), 'listener saw /one');
      assert.equal((await connection.next()).body.toString(), 'listener saw /two');
      connection.close();
      await bothFinished;
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    assert.deepEqual(
      finished.map((event) => [event.status, event.bytesSent, event.outcome]),
      [
        [200, 17, 'completed'],
        [200, 17, 'completed'],
      ],
    );
    assert.equal(handler.inFlight, 0);
  });

  it('runs under Express, mounted at a path', async () => {
    const bus = new SignalBus();
    let finished = 0;
    const apiFinished = new Promise<void>((resolve) =>
      bus.connect('request_finished', () => {
        finished++;
        resolve();
      }),
    );
    const handler = createHandler(
      async (request) => new Response(`tsgi: ${new URL(request.url).pathname} ${await request.text()}`),
      {
        signals: bus,
      },
    );
    const site = express();
    site.use('/api', toNodeListener(handler));
    site.get('/', (_req, res) => {
      res.send('express');
    });
    const server = http.createServer(site);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const api = await fetch(`http://127.0.0.1:${port}/api/items`, { method: 'POST', body: 'body' });
      assert.equal(await api.text(), 'tsgi: /items body');
      // Headers Express set before tsgi wrote its own (Node's setHeader path) are kept, next to tsgi's.
      assert.equal(api.headers.get('x-powered-by'), 'Express');
      assert.equal(api.headers.get('content-type'), 'text/plain;charset=UTF-8');
      assert.equal(api.headers.get('content-length'), String('tsgi: /items body'.length));
      const root = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await root.text(), 'express');
      await apiFinished;
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    assert.equal(finished, 1);
    assert.equal(handler.inFlight, 0);
  });
});
