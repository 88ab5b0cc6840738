/**
 * A PostgreSQL transaction per request, made with `scoped()`: the first `db(context)` in a request
 * takes a client from the pool and runs BEGIN; when the request is over (after every layer returned
 * and the body was sent) the transaction commits if the response completed without an exception,
 * and rolls back otherwise (the client left, the body failed, the application threw). The client
 * then goes back to the pool — or, if it broke on the way, is discarded, so the pool never hands out
 * a connection stuck in a transaction.
 *
 * test/services/pg.test.ts runs this against a real server.
 */
import type pg from 'pg';
import { type Scoped, scoped } from 'tsgi';

/**
 * The per-request transaction accessor for `pool`.
 *
 * @example
 * const db = transaction(new pg.Pool());
 * const application: Application = async (request, context) => {
 *   const client = await db(context);
 *   await client.query('INSERT INTO visits (path) VALUES ($1)', [new URL(request.url).pathname]);
 *   return new Response('counted');
 * };
 */
export function transaction(pool: pg.Pool): Scoped<pg.PoolClient> {
  return scoped(
    async function transaction() {
      const client = await pool.connect();
      // A checked-out client has no 'error' listener of the pool's, so a backend that dies between
      // queries (a restart, pg_terminate_backend) would throw at the process. The next query fails
      // anyway, and the release below then discards the client.
      client.on('error', ignore);
      try {
        await client.query('BEGIN');
      } catch (error) {
        giveBack(client, error);
        throw error;
      }
      return client;
    },
    async (client, info) => {
      // `completed` covers a 500 page too: commit only when nothing was raised.
      const commit = info.outcome === 'completed' && !('error' in info);
      try {
        await client.query(commit ? 'COMMIT' : 'ROLLBACK');
      } catch (error) {
        giveBack(client, error);
        throw error;
      }
      giveBack(client);
    },
  );
}

/** Back to the pool; with an error, pg closes the client instead of pooling it. */
function giveBack(client: pg.PoolClient, error?: unknown): void {
  client.removeListener('error', ignore);
  client.release(error === undefined ? undefined : error instanceof Error ? error : new Error(String(error)));
}

function ignore(): void {}
