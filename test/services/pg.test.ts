/**
 * `scoped()` with a real PostgreSQL: a transaction per request (examples/scoped-pg/transaction.ts)
 * behind a real `serve()` server and real clients. What was committed is checked from a second
 * connection, and after every test the pool is whole and no backend of ours sits `idle in
 * transaction`. Fails, never skips, when PostgreSQL is not running (the message says how to start it).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { transaction } from '../../examples/scoped-pg/transaction.ts';
import type { Application } from '../../src/index.ts';
import { get, open } from '../fixtures/client.ts';
import { startSite } from '../fixtures/node-site.ts';
import { connectPostgres, postgres, uniqueName } from '../fixtures/services.ts';
import { recordingStream } from '../fixtures/streams.ts';

const table = uniqueName('tsgi_scoped');
/** Our pools' backends carry this name, so pg_stat_activity shows only ours. */
const applicationName = uniqueName('tsgi-scoped-test');

let checker: pg.Client;
const pools: pg.Pool[] = [];

before(async () => {
  checker = await connectPostgres();
  await checker.query(`CREATE TABLE ${table} (label text NOT NULL)`);
});

after(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await checker?.query(`DROP TABLE IF EXISTS ${table}`);
  await checker?.end();
});

afterEach(async () => {
  for (const pool of pools) assertWhole(pool);
  assert.equal(await stuckInTransaction(), 0, 'no backend of ours is left idle in transaction');
});

function newPool(max: number): pg.Pool {
  const pool = new pg.Pool({ ...postgres, max, application_name: applicationName });
  pools.push(pool);
  return pool;
}

function assertWhole(pool: pg.Pool): void {
  assert.deepEqual(
    { idle: pool.idleCount, waiting: pool.waitingCount },
    { idle: pool.totalCount, waiting: 0 },
    'every client is back in the pool and nobody waits for one',
  );
}

async function rows(label: string): Promise<number> {
  const result = await checker.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${table} WHERE label = $1`,
    [label],
  );
  return result.rows[0]!.n;
}

async function stuckInTransaction(): Promise<number> {
  const result = await checker.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'",
    [applicationName],
  );
  return result.rows[0]!.n;
}

/**
 * The site: `/insert/LABEL` inserts a row in the request's transaction, then answers as the query
 * says: `throw` raises after the insert, `stream` sends an endless body, `rows=N` streams N more
 * inserts from the body itself, `pid` puts the backend's pid in a header.
 */
function site(pool: pg.Pool) {
  const db = transaction(pool);
  const app: Application = async (request, context) => {
    const url = new URL(request.url);
    const label = url.pathname.split('/')[2]!;
    const client = await db(context);
    await client.query(`INSERT INTO ${table} (label) VALUES ($1)`, [label]);
    if (url.searchParams.has('throw')) throw new Error('the handler failed after its insert');
    const headers: Record<string, string> = {};
    if (url.searchParams.has('pid')) {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      headers['x-backend-pid'] = String(rows[0]!.pid);
    }
    if (url.searchParams.has('stream')) {
      return new Response(recordingStream({ chunks: Number.POSITIVE_INFINITY }).stream, { headers });
    }
    const more = Number(url.searchParams.get('rows') ?? 0);
    if (more > 0) return new Response(insertingBody(client, label, more), { headers });
    return new Response('inserted', { headers });
  };
  return startSite(app);
}

/** A body that inserts a row before each chunk: it uses the transaction until the last byte. */
function insertingBody(client: pg.PoolClient, label: string, count: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === count) {
        controller.close();
        return;
      }
      await client.query(`INSERT INTO ${table} (label) VALUES ($1)`, [label]);
      controller.enqueue(new TextEncoder().encode(`row ${sent++}\n`));
    },
  });
}

describe('scoped() with a pg Pool, over real sockets', () => {
  it('commits the transaction of a request that completed', async () => {
    const pool = newPool(2);
    const served = await site(pool);
    try {
      const response = await get(`${served.server.url}/insert/completed`);
      assert.equal(response.status, 200);
      await served.finishedCount(1);
      assert.equal(await rows('completed'), 1);
      assert.equal(served.finished[0]!.outcome, 'completed');
    } finally {
      await served.close();
    }
  });

  it('commits after a streamed body that inserted as it went has been sent in full', async () => {
    const pool = newPool(2);
    const served = await site(pool);
    try {
      const response = await get(`${served.server.url}/insert/streamed?rows=3`);
      assert.equal(response.body.toString(), 'row 0\nrow 1\nrow 2\n');
      await served.finishedCount(1);
      assert.equal(await rows('streamed'), 4);
    } finally {
      await served.close();
    }
  });

  it('rolls back when the handler throws after its insert (the 500 page completes)', async () => {
    const pool = newPool(2);
    const served = await site(pool);
    served.bus.onError = () => {};
    try {
      const response = await get(`${served.server.url}/insert/thrown?throw`);
      assert.equal(response.status, 500);
      const [event] = await served.finishedCount(1);
      assert.equal(event!.outcome, 'completed');
      assert.equal(await rows('thrown'), 0);
    } finally {
      await served.close();
    }
  });

  it('rolls back when the client disconnects in the middle of the body', async () => {
    const pool = newPool(2);
    const served = await site(pool);
    try {
      const { req, res } = await open(`${served.server.url}/insert/aborted?stream`);
      await new Promise((resolve) => res.once('data', resolve));
      // Mid-stream the insert is in an open transaction: invisible to others, the backend waiting.
      assert.equal(await rows('aborted'), 0);
      assert.equal(await stuckInTransaction(), 1, 'the request holds its transaction open while it streams');
      req.destroy();
      const [event] = await served.finishedCount(1);
      assert.equal(event!.outcome, 'aborted');
      assert.equal(await rows('aborted'), 0);
    } finally {
      await served.close();
    }
  });

  it('discards a client whose backend died mid-request, and reports the failed rollback', async () => {
    const pool = newPool(2);
    const served = await site(pool);
    const reported: unknown[] = [];
    served.bus.onError = (error) => reported.push(error);
    try {
      const { req, res } = await open(`${served.server.url}/insert/killed?stream&pid`);
      await new Promise((resolve) => res.once('data', resolve));
      await checker.query('SELECT pg_terminate_backend($1)', [Number(res.headers['x-backend-pid'])]);
      req.destroy();
      const [event] = await served.finishedCount(1);
      assert.equal(event!.outcome, 'aborted');
      assert.equal(pool.totalCount, 0, 'the broken client was not put back in the pool');
      assert.equal(reported.length, 1);
      assert.equal((reported[0] as Error).name, 'ReleaseFailedError');
      assert.equal(await rows('killed'), 0);
      // The pool still serves: a fresh client, a committed row.
      assert.equal((await get(`${served.server.url}/insert/after-kill`)).status, 200);
      await served.finishedCount(2);
      assert.equal(await rows('after-kill'), 1);
    } finally {
      await served.close();
    }
  });

  it('serves 50 concurrent requests on a pool of 2 without a deadlock, committing every one', async () => {
    const pool = newPool(2);
    const served = await site(pool);
    try {
      const responses = await Promise.all(
        Array.from({ length: 50 }, () => get(`${served.server.url}/insert/many`)),
      );
      assert.deepEqual(new Set(responses.map((response) => response.status)), new Set([200]));
      await served.finishedCount(50);
      assert.equal(await rows('many'), 50);
      assert.ok(pool.totalCount <= 2, `the pool never grew past its max (${pool.totalCount})`);
      assert.equal(served.handler.inFlight, 0);
    } finally {
      await served.close();
    }
  });
});
