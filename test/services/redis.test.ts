/**
 * `scoped()` with a real Redis behind a real `serve()` server: a MULTI per request whose commands
 * reach Redis only when the response completed, and a connection per request that is closed however
 * the request ends. Fails, never skips, when Redis is not running (the message says how to start it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Application, type RequestContext, scoped } from '../../src/index.ts';
import { get, open } from '../fixtures/client.ts';
import { startSite } from '../fixtures/node-site.ts';
import { connectRedis, uniqueName } from '../fixtures/services.ts';
import { recordingStream } from '../fixtures/streams.ts';

type Redis = Awaited<ReturnType<typeof connectRedis>>;

const prefix = uniqueName('tsgi:scoped');
/** The CLIENT SETNAME of every per-request connection, so CLIENT LIST shows only ours. */
const connectionName = uniqueName('tsgi-scoped-request');

let redis: Redis;
let checker: Redis;

before(async () => {
  redis = await connectRedis();
  checker = await connectRedis();
});

after(async () => {
  const keys = await checker?.keys(`${prefix}:*`);
  if (keys !== undefined && keys.length > 0) await checker.del(keys);
  await Promise.all([redis?.close(), checker?.close()]);
});

const key = (name: string) => `${prefix}:${name}`;

/** A MULTI per request: sent with EXEC when the response completed without an exception. */
function writes() {
  return scoped(
    function multi() {
      return redis.multi();
    },
    async (multi, info) => {
      if (info.outcome === 'completed' && !('error' in info)) await multi.exec();
    },
  );
}

/** A connection of its own per request, closed when the request is over, whatever the outcome. */
function connections(opened: Redis[]) {
  return scoped(
    async function connection() {
      const client = redis.duplicate({ name: connectionName });
      client.on('error', () => {});
      try {
        await client.connect();
      } catch (error) {
        client.destroy();
        throw error;
      }
      opened.push(client);
      return client;
    },
    (client) => client.close(),
  );
}

/** `/incr/KEY` queues INCR KEY in the request's MULTI; `throw` raises afterwards, `stream` streams. */
function counterSite() {
  const batch = writes();
  const app: Application = async (request, context) => {
    const url = new URL(request.url);
    (await batch(context)).incr(key(url.pathname.split('/')[2]!));
    if (url.searchParams.has('throw')) throw new Error('the handler failed after queueing');
    if (url.searchParams.has('stream')) return new Response(recordingStream({ chunks: Infinity }).stream);
    return new Response('queued');
  };
  return startSite(app);
}

/** Our per-request connections that the server still has open. */
async function serverSideConnections(): Promise<number> {
  const list = String(await checker.sendCommand(['CLIENT', 'LIST']));
  return list.split('\n').filter((line) => line.includes(` name=${connectionName} `)).length;
}

/**
 * Resolves once Redis has dropped every connection of ours. `close()` ends the socket without a
 * QUIT, so Redis sees the disconnect a moment later and tells nobody: this asks again, bounded.
 */
async function serverDropsAll(limitMs = 2000): Promise<void> {
  const started = Date.now();
  let left = await serverSideConnections();
  while (left > 0) {
    if (Date.now() - started > limitMs) assert.fail(`Redis still has ${left} per-request connection(s) open`);
    await new Promise((resolve) => setTimeout(resolve, 10));
    left = await serverSideConnections();
  }
}

describe('scoped() with a Redis MULTI per request', () => {
  it('applies what a completed request queued', async () => {
    const site = await counterSite();
    try {
      assert.equal((await get(`${site.server.url}/incr/completed`)).status, 200);
      assert.equal((await get(`${site.server.url}/incr/completed`)).status, 200);
      await site.finishedCount(2);
      assert.equal(await checker.get(key('completed')), '2');
    } finally {
      await site.close();
    }
  });

  it('drops what a request queued when its handler threw (the 500 page completes)', async () => {
    const site = await counterSite();
    site.bus.onError = () => {};
    try {
      assert.equal((await get(`${site.server.url}/incr/thrown?throw`)).status, 500);
      const [event] = await site.finishedCount(1);
      assert.equal(event!.outcome, 'completed');
      assert.equal(await checker.exists(key('thrown')), 0);
    } finally {
      await site.close();
    }
  });

  it('drops what a request queued when the client disconnects in the middle of the body', async () => {
    const site = await counterSite();
    try {
      const { req, res } = await open(`${site.server.url}/incr/aborted?stream`);
      await new Promise((resolve) => res.once('data', resolve));
      req.destroy();
      const [event] = await site.finishedCount(1);
      assert.equal(event!.outcome, 'aborted');
      assert.equal(await checker.exists(key('aborted')), 0);
    } finally {
      await site.close();
    }
  });
});

describe('scoped() with a Redis connection per request', () => {
  /** `/` answers with the connection's CLIENT ID once all `expected` requests hold one; `stream` streams. */
  function connectionSite(opened: Redis[], expected: number) {
    const connection = connections(opened);
    let holding = 0;
    let allIn: () => void = () => {};
    const everyoneHolds = new Promise<void>((resolve) => {
      allIn = resolve;
    });
    const app: Application = async (request, context: RequestContext) => {
      const client = await connection(context);
      const id = String(await client.sendCommand(['CLIENT', 'ID']));
      if (++holding === expected) allIn();
      await everyoneHolds;
      if (new URL(request.url).searchParams.has('stream')) {
        return new Response(recordingStream({ chunks: Infinity }).stream);
      }
      return new Response(id);
    };
    return startSite(app);
  }

  it('gives each of 10 requests in flight at once a connection of its own, and closes every one', async () => {
    const opened: Redis[] = [];
    const site = await connectionSite(opened, 10);
    try {
      const responses = await Promise.all(Array.from({ length: 10 }, () => get(`${site.server.url}/`)));
      const ids = new Set(responses.map((response) => response.body.toString()));
      assert.equal(ids.size, 10, 'ten different server-side connections');
      await site.finishedCount(10);
      assert.equal(opened.length, 10);
      assert.ok(
        opened.every((client) => !client.isOpen),
        'every connection was closed on our side',
      );
      await serverDropsAll();
    } finally {
      await site.close();
    }
  });

  it('closes the connection of a request whose client left in the middle of the body', async () => {
    const opened: Redis[] = [];
    const site = await connectionSite(opened, 1);
    try {
      const { req, res } = await open(`${site.server.url}/?stream`);
      await new Promise((resolve) => res.once('data', resolve));
      assert.equal(await serverSideConnections(), 1, 'the request holds its connection while it streams');
      req.destroy();
      const [event] = await site.finishedCount(1);
      assert.equal(event!.outcome, 'aborted');
      assert.equal(opened[0]!.isOpen, false);
      await serverDropsAll();
    } finally {
      await site.close();
    }
  });
});
