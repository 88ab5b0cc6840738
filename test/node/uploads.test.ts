/**
 * Request bodies at the edges of the exchange (src/node/request.ts, the lingering close in
 * src/node/connection.ts): a body that arrived whole before its client left is still readable, and a
 * response that is complete while its client is still uploading ends the upload cleanly — the rest is
 * read and dropped for a bounded time and size, so that an early answer (a 413 above all) reaches a
 * client that is still sending instead of an EPIPE or ECONNRESET.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createHandler, type RequestFinishedEvent, SignalBus, toNodeListener } from '../../src/index.ts';
import { LINGER_BYTES, LINGER_MS } from '../../src/node/connection.ts';
import { UploadDiscardedError } from '../../src/node/request.ts';
import { deferred } from '../fixtures/client.ts';
import { Connection, startSite } from '../fixtures/node-site.ts';
import { endlessUpload, parseReply, upload } from '../fixtures/raw.ts';

const MAX_BODY = 64 * 1024;
/** Larger than what loopback buffers hold, so that the client is still sending when the 413 comes. */
const LARGE = 8 * 1024 * 1024;
const TOO_LARGE_PAGE = 'Payload Too Large\n';

/** An application that reads the whole body, as most do, and answers with its length. */
async function readAll(request: Request): Promise<Response> {
  return new Response(String((await request.arrayBuffer()).byteLength));
}

function assertTooLargeEvents(events: RequestFinishedEvent[], count: number): void {
  assert.equal(events.length, count);
  for (const event of events) {
    assert.deepEqual(
      [event.status, event.bytesSent, event.outcome],
      [413, Buffer.byteLength(TOO_LARGE_PAGE), 'completed'],
    );
  }
}

describe('a body that arrived whole before the client left (a fire-and-forget client)', () => {
  /**
   * Sends `request` and closes the socket at once; the application reads the body only once the
   * exchange is over (its signal aborted), and the test gets what it read.
   */
  async function readAfterDisconnect(
    request: string,
    read: (request: Request) => Promise<unknown>,
  ): Promise<{ result: unknown; event: RequestFinishedEvent }> {
    const outcome = deferred<unknown>();
    const site = await startSite(async (request, context) => {
      if (!context.signal.aborted) await once(context.signal, 'abort');
      try {
        outcome.resolve(await read(request));
      } catch (error) {
        outcome.resolve(error);
      }
      return new Response('nobody is there');
    });
    try {
      const socket = net.connect(site.server.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.end(request);
      const result = await outcome.promise;
      const [event] = await site.finishedCount(1);
      return { result, event: event! };
    } finally {
      await site.close();
    }
  }

  const json = JSON.stringify({ event: 'push', commits: Array.from({ length: 40 }, (_, i) => `c${i}`) });

  it('is read whole with text(), framed by Content-Length', { timeout: 5000 }, async () => {
    const { result, event } = await readAfterDisconnect(
      `POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
      (request) => request.text(),
    );
    assert.equal(result, json);
    assert.deepEqual([event.status, event.bytesSent, event.outcome], [0, 0, 'aborted']);
  });

  it('is read whole with json(), chunked', { timeout: 5000 }, async () => {
    const half = json.length >> 1;
    const chunks = [json.slice(0, half), json.slice(half)]
      .map((part) => `${part.length.toString(16)}\r\n${part}\r\n`)
      .join('');
    const { result } = await readAfterDisconnect(
      `POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`,
      (request) => request.json(),
    );
    assert.deepEqual(result, JSON.parse(json));
  });

  it('is read whole through request.body and formData()', { timeout: 5000 }, async () => {
    const form = 'a=1&b=two';
    const streamed = await readAfterDisconnect(
      `POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${form.length}\r\n\r\n${form}`,
      (request) => new Response(request.body).text(),
    );
    assert.equal(streamed.result, form);
    const parsed = await readAfterDisconnect(
      `POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`,
      async (request) => Object.fromEntries(await request.formData()),
    );
    assert.deepEqual(parsed.result, { a: '1', b: 'two' });
  });

  it('is still an error when it was cut short', { timeout: 5000 }, async () => {
    const { result } = await readAfterDisconnect(
      'POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nonly part of it',
      (request) => request.text(),
    );
    assert.ok(result instanceof Error, 'the read failed');
  });
});

describe('a 413 while the client is still uploading', () => {
  it('reaches 20 concurrent node:http uploaders, whose uploads then end without EPIPE or ECONNRESET', {
    timeout: 10_000,
  }, async () => {
    const site = await startSite(readAll, { maxBodySize: MAX_BODY });
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => upload(site.server.url, LARGE, { chunked: i % 2 === 1 })),
      );
      for (const result of results)
        assert.deepEqual(result, { status: 413, body: TOO_LARGE_PAGE, error: undefined });
      assertTooLargeEvents(await site.finishedCount(20), 20);
    } finally {
      await site.close();
    }
  });

  it('reaches 20 concurrent fetch uploaders, with a body of known length or a stream', {
    timeout: 10_000,
  }, async () => {
    const site = await startSite(readAll, { maxBodySize: MAX_BODY });
    try {
      const bytes = new Uint8Array(LARGE);
      const statuses = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const body = i % 2 === 0 ? bytes : new Blob([bytes]).stream();
          const response = await fetch(site.server.url, {
            method: 'POST',
            body,
            duplex: 'half',
          } as RequestInit);
          return [response.status, await response.text()];
        }),
      );
      for (const status of statuses) assert.deepEqual(status, [413, TOO_LARGE_PAGE]);
      assertTooLargeEvents(await site.finishedCount(20), 20);
    } finally {
      await site.close();
    }
  });

  it('reaches node:http uploaders under toNodeListener() too', { timeout: 10_000 }, async () => {
    const bus = new SignalBus();
    const finished: RequestFinishedEvent[] = [];
    bus.connect('request_finished', (event) => {
      finished.push(event);
    });
    const server = http.createServer(
      toNodeListener(createHandler(readAll, { signals: bus }), { maxBodySize: MAX_BODY }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const results = await Promise.all(
        Array.from({ length: 5 }, () => upload(`http://127.0.0.1:${port}/`, LARGE)),
      );
      for (const result of results)
        assert.deepEqual(result, { status: 413, body: TOO_LARGE_PAGE, error: undefined });
      assertTooLargeEvents(finished, 5);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('reaches curl, which exits 0', { skip: !hasCurl(), timeout: 10_000 }, async () => {
    const file = join(tmpdir(), `tsgi-upload-${process.pid}.bin`);
    await writeFile(file, new Uint8Array(LARGE));
    const site = await startSite(readAll, { maxBodySize: MAX_BODY });
    try {
      const output = await new Promise<string>((resolve, reject) =>
        execFile(
          'curl',
          ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--data-binary', `@${file}`, site.server.url],
          (error, stdout) => (error ? reject(error) : resolve(stdout)),
        ),
      );
      assert.equal(output, '413');
    } finally {
      await site.close();
      await rm(file, { force: true });
    }
  });

  it(`is followed by a cut connection once an upload goes on past ${LINGER_BYTES} bytes`, {
    timeout: 10_000,
  }, async () => {
    const site = await startSite(readAll, { maxBodySize: MAX_BODY });
    try {
      const result = await endlessUpload(
        site.server.port,
        'POST /endless HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000000\r\n\r\n',
      );
      assert.equal(parseReply(result.received).status, 413);
      assert.ok(result.written > LINGER_BYTES / 2, `the server kept reading (${result.written} bytes)`);
      assert.ok(result.written < LINGER_BYTES * 4, `then cut the connection (${result.written} bytes)`);
      assertTooLargeEvents(await site.finishedCount(1), 1);
    } finally {
      await site.close();
    }
  });
});

describe('a response complete before the application read the whole upload', () => {
  it('lets a kept-alive connection carry on once the rest of the upload has arrived', {
    timeout: 10_000,
  }, async () => {
    const site = await startSite(async (request) => {
      if (new URL(request.url).pathname === '/next') return new Response('next');
      await request.body!.getReader().read(); // peeks at the start, then answers without the rest
      return new Response('early');
    });
    try {
      const connection = await Connection.open(site.server.port);
      const size = 256 * 1024;
      connection.write(`POST /peek HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${size}\r\n\r\n`);
      connection.write(Buffer.alloc(size, 0x7a));
      connection.write('GET /next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const early = await connection.next();
      const next = await connection.next();
      connection.close();
      assert.deepEqual([early.status, early.body.toString()], [200, 'early']);
      assert.deepEqual([next.status, next.body.toString()], [200, 'next']);
      const events = await site.finishedCount(2);
      assert.deepEqual(
        events.map((event) => [event.status, event.bytesSent, event.outcome]),
        [
          [200, 5, 'completed'],
          [200, 4, 'completed'],
        ],
      );
    } finally {
      await site.close();
    }
  });

  it('fails a read the application makes afterwards with UploadDiscardedError', {
    timeout: 10_000,
  }, async () => {
    const later = deferred<unknown>();
    const site = await startSite(async (request) => {
      const reader = request.body!.getReader();
      await reader.read();
      // Keeps reading after it answered: the rest of the upload is not for it any more.
      void (async () => {
        try {
          for (;;) if ((await reader.read()).done) return later.resolve('read to the end');
        } catch (error) {
          later.resolve(error);
        }
      })();
      return new Response('accepted', { status: 202 });
    });
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(
        `POST /later HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n${'a'.repeat(1000)}`,
      );
      const response = await connection.next();
      assert.equal(response.status, 202);
      const error = await later.promise;
      connection.close();
      assert.ok(error instanceof UploadDiscardedError, String(error));
      assert.match(error.message, /read the body before returning the response/);
    } finally {
      await site.close();
    }
  });

  it(`closes the connection ${LINGER_MS} ms after the response when the client stops sending`, {
    timeout: 10_000,
  }, async () => {
    const site = await startSite(() => new Response('never read it'));
    try {
      const connection = await Connection.open(site.server.port);
      connection.write(
        `POST /stall HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n${'b'.repeat(1000)}`,
      );
      const response = await connection.next();
      const answered = Date.now();
      await connection.closed;
      const lingered = Date.now() - answered;
      assert.equal(response.status, 200);
      assert.ok(lingered >= LINGER_MS - 100, `closed after ${lingered} ms`);
      assert.ok(lingered < LINGER_MS + 1500, `closed after ${lingered} ms`);
    } finally {
      await site.close();
    }
  });
});

function hasCurl(): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
