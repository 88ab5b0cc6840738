/**
 * The Node adapter when the exchange does not end well: the client leaves before the answer or in
 * the middle of the body, the body fails midway, or the client reads slower than the source writes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deferred } from './fixtures/client.ts';
import { Connection, getRequest, startSite, until } from './fixtures/node-site.ts';
import { recordingStream } from './fixtures/streams.ts';

describe('when the client goes away before the response', () => {
  it('aborts context.signal, cancels the body returned afterwards, and finishes aborted with status 0', async () => {
    const entered = deferred();
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    let abortedInApp = false;
    const site = await startSite(async (request, context) => {
      entered.resolve();
      await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
      abortedInApp = request.signal.aborted;
      return new Response(source.stream);
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/slow'));
      await entered.promise;
      connection.close();
      const [event] = await site.finishedCount(1);
      assert.equal(abortedInApp, true, 'request.signal aborted too');
      assert.equal(source.cancelled, true, 'the body returned after the client left was cancelled');
      assert.equal(source.pulls, 0);
      assert.deepEqual([event!.status, event!.bytesSent, event!.outcome], [0, 0, 'aborted']);
      assert.equal(site.started, 1);
      assert.equal(site.finished.length, 1);
      assert.equal(site.handler.inFlight, 0);
    } finally {
      await site.close();
    }
  });

  it('fails the request body read of an upload cut short, and finishes aborted', async () => {
    const reading = deferred();
    let readError: unknown;
    const site = await startSite(async (request) => {
      reading.resolve();
      try {
        await request.text();
      } catch (error) {
        readError = error;
      }
      return new Response('never sent');
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write('POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\npartial');
      await reading.promise;
      connection.close();
      const [event] = await site.finishedCount(1);
      assert.ok(readError instanceof Error, 'the read failed');
      assert.equal(event!.outcome, 'aborted');
      assert.equal(site.handler.inFlight, 0);
    } finally {
      await site.close();
    }
  });
});

describe('when the client goes away in the middle of the body', () => {
  it('cancels the source and finishes aborted with the status sent and the bytes written', async () => {
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const site = await startSite(() => new Response(source.stream));
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/endless'));
      await new Promise((resolve) => connection.socket.once('data', resolve));
      connection.close();
      const [event] = await site.finishedCount(1);
      assert.equal(source.cancelled, true);
      assert.equal(event!.outcome, 'aborted');
      assert.equal(event!.status, 200);
      assert.ok(event!.bytesSent > 0, 'bytesSent counts what was written');
      assert.equal(site.finished.length, 1);
      assert.equal(site.handler.inFlight, 0);
    } finally {
      await site.close();
    }
  });
});

describe('when the body fails midway', () => {
  it('cuts the connection instead of ending the chunked body, and finishes errored', async () => {
    const source = recordingStream({ chunks: 10, failAt: 2 });
    const site = await startSite(() => new Response(source.stream));
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/failing'));
      const response = await connection.next();
      await connection.closed;
      assert.equal(response.status, 200);
      assert.equal(response.complete, false, 'no terminating chunk: the client sees a truncated body');
      assert.equal(response.body.toString(), 'chunk 0;chunk 1;');
      const [event] = await site.finishedCount(1);
      assert.equal(event!.outcome, 'errored');
      assert.equal((event!.error as Error).message, 'source failed at chunk 2');
      assert.deepEqual([event!.status, event!.bytesSent], [200, 16]);
      assert.equal(site.handler.inFlight, 0);
    } finally {
      await site.close();
    }
  });

  it('answers 500 when the body fails before its first chunk, as nothing was sent yet, and carries on', async () => {
    const source = recordingStream({ chunks: 10, failAt: 0 });
    const site = await startSite((request) =>
      new URL(request.url).pathname === '/next' ? new Response('next') : new Response(source.stream),
    );
    site.bus.onError = () => {};
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(getRequest('/failing') + getRequest('/next'));
      const failed = await connection.next();
      assert.equal(failed.status, 500);
      assert.equal(failed.body.toString(), 'Internal Server Error\n');
      assert.equal((await connection.next()).body.toString(), 'next');
      connection.close();
      const [event] = await site.finishedCount(2);
      assert.equal(event!.outcome, 'completed');
      assert.equal((event!.error as Error).message, 'source failed at chunk 0');
      assert.deepEqual([event!.status, event!.bytesSent], [500, 22]);
    } finally {
      await site.close();
    }
  });
});

describe('when the client reads slower than the source writes', () => {
  it('does not read ahead: a paused client holds a 64 MiB stream back, and gets all of it', async () => {
    const chunk = new Uint8Array(64 * 1024).fill(97);
    const total = 1024; // 64 MiB
    let pulls = 0;
    const source = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (pulls === total) return controller.close();
          pulls++;
          controller.enqueue(chunk);
        },
      },
      { highWaterMark: 0 },
    );
    const site = await startSite(() => new Response(source));
    try {
      const connection = await Connection.open(site.server.port);
      connection.socket.pause();
      connection.write(getRequest('/big'));
      // Wait until the server stops pulling: the socket buffers are full and it waits for 'drain'.
      await until(() => pulls > 0, 'the first pull');
      let seen = -1;
      while (seen !== pulls) {
        seen = pulls;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const whilePaused = pulls;
      assert.ok(
        whilePaused * chunk.byteLength < 16 * 1024 * 1024,
        `read ${whilePaused} chunks (${(whilePaused * chunk.byteLength) / 2 ** 20} MiB) ahead of a paused client`,
      );
      // Read it all, counting without keeping it.
      connection.socket.removeAllListeners('data');
      let received = 0;
      connection.socket.on('data', (data: Buffer) => {
        received += data.length;
      });
      connection.socket.resume();
      const [event] = await site.finishedCount(1);
      assert.equal(pulls, total);
      assert.deepEqual([event!.outcome, event!.bytesSent], ['completed', total * chunk.byteLength]);
      await until(() => received >= total * chunk.byteLength, 'the whole body at the client');
      connection.close();
    } finally {
      await site.close();
    }
  });
});
