/**
 * When the head of a stream response reaches the client, over real sockets.
 *
 * Node's `writeHead()` only stores the head until the first body write, so a server-sent-events or
 * long-poll response whose first event comes late would leave the client without even a status.
 * The adapter sends the head on its own once the turn of the event loop that wrote it is over, and
 * with the first chunk when that is ready sooner (one write). A body that fails before the head went
 * out is answered 500; after it, only a cut connection can say the body failed.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { deferred, open } from '../fixtures/client.ts';
import { startSite } from '../fixtures/node-site.ts';

const encoder = new TextEncoder();

/** A body whose first chunk waits for `release`; it then sends `first` (or fails) and ends. */
function late(release: Promise<void>, first: string | Error): ReadableStream<Uint8Array> {
  let step = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (step++ > 0) {
          controller.close();
          return;
        }
        await release;
        if (first instanceof Error) throw first;
        controller.enqueue(encoder.encode(first));
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * A release that the test calls once the head has arrived. So that the old behaviour (head held back
 * until the first chunk) fails instead of waiting forever, it also releases itself after 2 s, and
 * `fired()` then says the head did not come first.
 */
function gate(): { promise: Promise<void>; release: () => void; fired: () => boolean } {
  const { promise, resolve } = deferred();
  let fired = false;
  const valve = setTimeout(() => {
    fired = true;
    resolve();
  }, 2000);
  return {
    promise,
    release() {
      clearTimeout(valve);
      resolve();
    },
    fired: () => fired,
  };
}

/** Reads `res` to its end (or its error). */
function drain(res: NodeJS.ReadableStream): Promise<{ text: string; error?: Error }> {
  return new Promise((resolve) => {
    let text = '';
    res.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    res.on('end', () => resolve({ text }));
    res.on('error', (error: Error) => resolve({ text, error }));
  });
}

describe('a stream response whose first chunk comes late', () => {
  it('sends its status and headers at once, before the first chunk', async () => {
    const first = gate();
    const site = await startSite(
      () =>
        new Response(late(first.promise, 'data: first\n\n'), { status: 201, headers: { 'x-head': 'early' } }),
    );
    try {
      const { res } = await open(`${site.server.url}/`);
      const inTime = !first.fired();
      first.release();
      assert.equal(res.statusCode, 201);
      assert.equal(res.headers['x-head'], 'early');
      assert.equal((await drain(res)).text, 'data: first\n\n');
      const [finished] = await site.finishedCount(1);
      assert.equal(finished!.outcome, 'completed');
      assert.equal(finished!.status, 201);
      assert.ok(inTime, 'the head arrived before the first chunk was released');
    } finally {
      first.release();
      await site.close();
    }
  });

  it('lets a fetch() client see an event stream open before its first event', async () => {
    const first = gate();
    const site = await startSite(
      () =>
        new Response(late(first.promise, 'data: hello\n\n'), {
          headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
        }),
    );
    try {
      const response = await fetch(`${site.server.url}/events`);
      const inTime = !first.fired();
      first.release();
      assert.ok(inTime, 'fetch() resolved before the first event was released');
      assert.equal(response.headers.get('content-type'), 'text/event-stream');
      assert.equal(await response.text(), 'data: hello\n\n');
    } finally {
      first.release();
      await site.close();
    }
  });

  it('cuts the connection when the body fails after the head went out', async () => {
    const first = gate();
    const site = await startSite(() => new Response(late(first.promise, new Error('late failure'))));
    const errors: unknown[] = [];
    site.bus.onError = (error) => errors.push(error);
    try {
      const { res } = await open(`${site.server.url}/`);
      const inTime = !first.fired();
      first.release();
      assert.equal(res.statusCode, 200);
      const { error } = await drain(res);
      assert.ok(error !== undefined || !res.complete, 'the client cannot take the body for complete');
      const [finished] = await site.finishedCount(1);
      assert.equal(finished!.outcome, 'errored');
      assert.equal(finished!.status, 200);
      assert.ok(inTime, 'the head arrived before the body failed');
      assert.match(String(errors[0]), /late failure/);
    } finally {
      first.release();
      await site.close();
    }
  });
});

describe('a stream response whose first chunk is ready at once', () => {
  it('sends the head and the first chunk together', async () => {
    const site = await startSite(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(encoder.encode('together'));
              controller.close();
            },
          }),
        ),
    );
    try {
      const socket = net.connect(site.server.port, '127.0.0.1');
      const firstData = await new Promise<string>((resolve, reject) => {
        socket.once('data', (data: Buffer) => resolve(data.toString('latin1')));
        socket.once('error', reject);
        socket.write('GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
      });
      socket.destroy();
      assert.match(firstData, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(
        firstData,
        /\r\n\r\n8\r\ntogether\r\n/,
        'the first chunk came in the same packet as the head',
      );
    } finally {
      await site.close();
    }
  });

  it('answers 500 for a body that fails before its first chunk, as nothing was sent yet', async () => {
    const errors: unknown[] = [];
    const site = await startSite(
      () =>
        new Response(
          new ReadableStream({
            pull() {
              throw new Error('early failure');
            },
          }),
          { headers: { 'x-from-app': 'yes' } },
        ),
    );
    site.bus.onError = (error) => errors.push(error);
    try {
      const { res } = await open(`${site.server.url}/`);
      assert.equal(res.statusCode, 500);
      assert.equal(res.headers['x-from-app'], undefined, 'the failed response’s head was never sent');
      assert.equal((await drain(res)).text, 'Internal Server Error\n');
      const [finished] = await site.finishedCount(1);
      assert.equal(finished!.status, 500);
      assert.equal(finished!.outcome, 'completed');
      assert.match(String(finished!.error), /early failure/);
      assert.match(String(errors[0]), /early failure/);
    } finally {
      await site.close();
    }
  });

  it('answers 500 for a stream response with a header Node refuses (WHATWG Headers takes it)', async () => {
    const site = await startSite(
      () =>
        new Response(new Blob(['x']).stream(), {
          headers: { 'x-control': 'a\u0001b' },
        }),
    );
    const errors: unknown[] = [];
    site.bus.onError = (error) => errors.push(error);
    try {
      const { res } = await open(`${site.server.url}/`);
      assert.equal(res.statusCode, 500);
      assert.equal((await drain(res)).text, 'Internal Server Error\n');
      assert.match(String(errors[0]), /Invalid character in header content/);
    } finally {
      await site.close();
    }
  });
});
