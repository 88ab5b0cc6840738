/**
 * `close()` of a running server: it stops accepting, closes idle keep-alive connections at once,
 * lets in-flight requests finish (for at most `gracefulTimeout`), and resolves after every request
 * scope has closed. And the global `Response` swap lasts exactly while a server runs.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { serve, toNodeListener } from '../src/index.ts';
import { deferred } from './fixtures/client.ts';
import { Connection, getRequest, startSite, until } from './fixtures/node-site.ts';
import { recordingStream } from './fixtures/streams.ts';

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('close()', () => {
  it('closes idle keep-alive connections at once', async () => {
    const site = await startSite(() => new Response('hello'), { keepAliveTimeout: 60_000 });
    const connection = await Connection.open(site.server.port);
    connection.write(getRequest('/'));
    await connection.next();
    const started = performance.now();
    await site.close();
    await connection.closed;
    assert.ok(performance.now() - started < 2000, 'did not wait for the keep-alive timeout');
    assert.equal(site.finished.length, 1);
  });

  it('stops accepting, lets an in-flight request finish with Connection: close, then resolves', async () => {
    const release = deferred();
    const entered = deferred();
    const site = await startSite(async () => {
      entered.resolve();
      await release.promise;
      return new Response('finished in time');
    });
    const connection = await Connection.open(site.server.port);
    connection.write(getRequest('/'));
    await entered.promise;
    let closed = false;
    const closing = site.close().then(() => {
      closed = true;
    });
    assert.equal(await refused(site.server.port), true, 'new connections are refused');
    assert.equal(closed, false);
    release.resolve();
    const response = await connection.next();
    assert.equal(response.body.toString(), 'finished in time');
    assert.deepEqual(response.headers.connection, ['close']);
    await closing;
    assert.equal(site.finished.length, 1, 'resolved after request_finished');
    assert.equal(site.finished[0]!.outcome, 'completed');
    assert.equal(site.handler.inFlight, 0);
    await connection.closed;
  });

  it('closes a connection once the response it was streaming when close() came is over', async () => {
    const release = deferred();
    const site = await startSite(() => {
      const encoder = new TextEncoder();
      let sent = false;
      return new Response(
        new ReadableStream({
          async pull(controller) {
            if (sent) {
              await release.promise;
              controller.close();
              return;
            }
            sent = true;
            controller.enqueue(encoder.encode('first;'));
          },
        }),
      );
    });
    const connection = await Connection.open(site.server.port);
    connection.write(getRequest('/'));
    await new Promise((resolve) => connection.socket.once('data', resolve));
    const closing = site.close();
    release.resolve();
    const response = await connection.next();
    assert.equal(response.complete, true);
    assert.equal(response.body.toString(), 'first;');
    await connection.closed;
    await closing;
    assert.equal(site.finished[0]!.outcome, 'completed');
  });

  it('answers pipelined requests in flight, then closes', async () => {
    const release = deferred();
    const site = await startSite(async (request) => {
      if (new URL(request.url).pathname === '/1') await release.promise;
      return new Response(`answer ${new URL(request.url).pathname}`);
    });
    const connection = await Connection.open(site.server.port);
    connection.write(getRequest('/1') + getRequest('/2') + getRequest('/3'));
    await until(() => site.started === 3, 'three requests started');
    const closing = site.close();
    release.resolve();
    const bodies = [];
    for (let i = 0; i < 3; i++) bodies.push((await connection.next()).body.toString());
    assert.deepEqual(bodies, ['answer /1', 'answer /2', 'answer /3']);
    await closing;
    assert.deepEqual(
      site.finished.map((event) => event.outcome),
      ['completed', 'completed', 'completed'],
    );
    await connection.closed;
  });

  it('does not cut a response that has ended but is still being flushed to a slow client', async () => {
    const big = 'b'.repeat(16 * 1024 * 1024);
    const site = await startSite(() => new Response(big));
    const connection = await Connection.open(site.server.port);
    connection.socket.pause();
    connection.write(getRequest('/big'));
    // The application answers in the same tick as request_started, so by the next turn the server
    // has ended the response: most of the body waits in user space for the socket to drain.
    await until(() => site.started === 1, 'the request started');
    const closing = site.close();
    connection.socket.resume();
    const response = await connection.next();
    assert.equal(response.complete, true);
    assert.equal(response.body.length, big.length);
    await closing;
    assert.deepEqual([site.finished[0]!.outcome, site.finished[0]!.bytesSent], ['completed', big.length]);
    connection.close();
  });

  it('cuts what is still running after gracefulTimeout, and still resolves after every scope closed', async () => {
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const site = await startSite(() => new Response(source.stream), { gracefulTimeout: 100 });
    const connection = await Connection.open(site.server.port);
    connection.socket.pause();
    connection.write(getRequest('/endless'));
    await until(() => source.pulls > 0, 'the body started');
    assert.deepEqual(await site.server.close(), { cut: 1 }, 'close() says how many it cut');
    assert.equal(site.finished.length, 1);
    assert.equal(site.finished[0]!.outcome, 'aborted');
    assert.equal(source.cancelled, true);
    assert.equal(site.handler.inFlight, 0);
    connection.socket.resume(); // a paused socket never sees the server close it
    await connection.closed;
  });

  it('returns the same promise when called again', async () => {
    const site = await startSite(() => new Response('x'));
    const first = site.server.close();
    assert.equal(site.server.close(), first);
    assert.deepEqual(await first, { cut: 0 }, 'a clean stop cut nothing');
  });
});

describe('the global Response while serving', () => {
  it('is tsgi’s FastResponse while a server runs, and the original once the last one closed', async () => {
    const original = globalThis.Response;
    const first = await serve(() => new Response('first'), { port: 0 });
    const second = await serve(() => new Response('second'), { port: 0 });
    const swapped = globalThis.Response;
    assert.notEqual(swapped, original);
    assert.ok(new Response('x') instanceof original, 'still an instance of the original Response');
    assert.ok(new original('x') instanceof Response, 'undici responses are instances of the swapped one');
    await first.close();
    assert.equal(globalThis.Response, swapped, 'kept while a server still runs');
    await second.close();
    assert.equal(globalThis.Response, original);
  });

  it('is swapped for toNodeListener({ fastResponse: true }) once its host server has a connection, until the host closes', async () => {
    const original = globalThis.Response;
    const server = http.createServer(toNodeListener(() => new Response('hosted'), { fastResponse: true }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    assert.equal(globalThis.Response, original, 'nothing is swapped before a request comes');
    const { port } = server.address() as { port: number };
    const connection = await Connection.open(port);
    connection.write(getRequest('/'));
    assert.equal((await connection.next()).body.toString(), 'hosted');
    assert.notEqual(globalThis.Response, original);
    connection.close();
    await new Promise((resolve) => server.close(resolve));
    assert.equal(globalThis.Response, original);
  });
});
