/**
 * The Node adapter on persistent connections: several requests on one socket, pipelined requests
 * (answered in order, each finishing exactly once even when the client leaves while they are queued),
 * and request bodies the application leaves unread.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deferred } from './fixtures/client.ts';
import { Connection, getRequest, startSite, until } from './fixtures/node-site.ts';
import { recordingStream } from './fixtures/streams.ts';

const pathOf = (request: Request): string => new URL(request.url).pathname;

describe('keep-alive', () => {
  it('serves several requests one after another on one connection', async () => {
    const ports = new Set<number>();
    const site = await startSite((request) => new Response(`answer to ${pathOf(request)}`));
    try {
      const connection = await Connection.open(site.server.port);
      for (const path of ['/a', '/b', '/c']) {
        connection.write(getRequest(path));
        const response = await connection.next();
        assert.equal(response.body.toString(), `answer to ${path}`);
        assert.deepEqual(response.headers.connection, ['keep-alive']);
        ports.add(connection.socket.localPort!);
      }
      connection.close();
      await site.finishedCount(3);
      assert.equal(ports.size, 1);
      assert.ok(site.finished.every((event) => event.outcome === 'completed'));
      assert.equal(site.handler.inFlight, 0);
    } finally {
      await site.close();
    }
  });

  it('keeps the connection usable when the application leaves a request body unread', async () => {
    const site = await startSite((request) => new Response(`${request.method} ${pathOf(request)}`));
    try {
      const connection = await Connection.open(site.server.port);
      const body = 'x'.repeat(100_000);
      connection.write(
        `POST /ignored HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      assert.equal((await connection.next()).body.toString(), 'POST /ignored');
      connection.write(getRequest('/next'));
      assert.equal((await connection.next()).body.toString(), 'GET /next');
      connection.close();
    } finally {
      await site.close();
    }
  });

  it('keeps the connection usable when the application reads part of a request body', async () => {
    const site = await startSite(async (request) => {
      if (request.body === null) return new Response(`${request.method} ${pathOf(request)}`);
      const reader = request.body.getReader();
      const first = await reader.read();
      await reader.cancel();
      return new Response(`read ${first.value?.byteLength ?? 0} bytes`);
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(
        'POST /part HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
      );
      assert.equal((await connection.next()).body.toString(), 'read 5 bytes');
      connection.write('6\r\n world\r\n0\r\n\r\n');
      connection.write(getRequest('/next'));
      assert.equal((await connection.next()).body.toString(), 'GET /next');
      connection.close();
    } finally {
      await site.close();
    }
  });
});

describe('pipelining', () => {
  it('answers three requests sent in one write, in order', async () => {
    const site = await startSite((request) => new Response(`answer to ${pathOf(request)}`));
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/1') + getRequest('/2') + getRequest('/3'));
      const bodies = [];
      for (let i = 0; i < 3; i++) bodies.push((await connection.next()).body.toString());
      connection.close();
      assert.deepEqual(bodies, ['answer to /1', 'answer to /2', 'answer to /3']);
      await site.finishedCount(3);
      assert.equal(site.started, 3);
      assert.ok(site.finished.every((event) => event.outcome === 'completed'));
    } finally {
      await site.close();
    }
  });

  it('keeps the order when the first answer is the slowest, and finishes each once', async () => {
    const release = deferred();
    const site = await startSite(async (request) => {
      if (pathOf(request) === '/slow') {
        await release.promise;
        return new Response(recordingStream({ chunks: 3 }).stream);
      }
      return new Response(`answer to ${pathOf(request)}`);
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/slow') + getRequest('/fast') + getRequest('/faster'));
      // The two fast answers are ready (and queued) before the slow one is released.
      await until(() => site.started === 3, 'all three requests started');
      release.resolve();
      const bodies = [];
      for (let i = 0; i < 3; i++) bodies.push((await connection.next()).body.toString());
      connection.close();
      assert.deepEqual(bodies, ['chunk 0;chunk 1;chunk 2;', 'answer to /fast', 'answer to /faster']);
      await site.finishedCount(3);
      assert.deepEqual(
        site.finished.map((event) => [pathOf(event.request), event.outcome, event.bytesSent]),
        [
          ['/slow', 'completed', 24],
          ['/fast', 'completed', 15],
          ['/faster', 'completed', 17],
        ],
      );
    } finally {
      await site.close();
    }
  });

  it('finishes every queued request aborted when the client leaves behind a slow one', async () => {
    const slowSource = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const queuedSource = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const entered = deferred();
    const site = await startSite(async (request, context) => {
      if (pathOf(request) === '/slow') {
        entered.resolve();
        await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
        return new Response(slowSource.stream);
      }
      if (pathOf(request) === '/stream') return new Response(queuedSource.stream);
      return new Response(`answer to ${pathOf(request)}`);
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/slow') + getRequest('/fast') + getRequest('/stream'));
      await entered.promise;
      await until(() => site.started === 3, 'all three requests started');
      connection.close();
      const events = await site.finishedCount(3);
      assert.equal(site.finished.length, 3);
      assert.deepEqual(events.map((event) => event.outcome).sort(), ['aborted', 'aborted', 'aborted']);
      assert.equal(slowSource.cancelled, true);
      assert.equal(queuedSource.cancelled, true);
      assert.equal(site.handler.inFlight, 0);
    } finally {
      await site.close();
    }
  });

  it('answers a pipelined HEAD without body bytes, so the next answer is framed right', async () => {
    const site = await startSite((request) => new Response(`answer to ${pathOf(request)}`));
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/head', {}, 'HEAD') + getRequest('/get'), [true, false]);
      const head = await connection.next();
      const get = await connection.next();
      connection.close();
      assert.deepEqual(head.headers['content-length'], ['15']);
      assert.equal(get.body.toString(), 'answer to /get');
    } finally {
      await site.close();
    }
  });
});
