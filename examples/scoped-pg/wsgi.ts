/**
 * A visit counter on PostgreSQL, to show `scoped()`: every request runs in a transaction of its own.
 *
 * - `GET /` — records the visit and answers with the number of visits so far (committed);
 * - `GET /fail` — records a visit, then throws: the 500 page is sent and the visit rolled back;
 * - `GET /slow` — records a visit, then streams for 5 s: leave early (Ctrl-C in curl) and it is
 *   rolled back, stay to the end and it counts.
 *
 * Serve it with `tsgi serve examples/scoped-pg/wsgi.ts` (PG* variables say where the database is;
 * default: 127.0.0.1, database `test`, user `postgres`).
 */
import pg from 'pg';
import type { Application } from 'tsgi';
import { transaction } from './transaction.ts';

const pool = new pg.Pool({
  host: process.env.PGHOST ?? '127.0.0.1',
  database: process.env.PGDATABASE ?? 'test',
  user: process.env.PGUSER ?? 'postgres',
});
await pool.query('CREATE TABLE IF NOT EXISTS tsgi_visits (at timestamptz NOT NULL DEFAULT now())');
const db = transaction(pool);

export const application: Application = async (request, context) => {
  const client = await db(context);
  await client.query('INSERT INTO tsgi_visits DEFAULT VALUES');
  const { pathname } = new URL(request.url);
  if (pathname === '/fail') throw new Error('/fail always fails: this visit is rolled back');
  const { rows } = await client.query<{ count: string }>('SELECT count(*) FROM tsgi_visits');
  const text = `visit number ${rows[0]!.count}\n`;
  return new Response(pathname === '/slow' ? slowly(text, 5) : text);
};

/** `text`, then one dot a second for `seconds` seconds; stops when the client leaves. */
function slowly(text: string, seconds: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let left = seconds;
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(text));
    },
    pull(controller) {
      return new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          controller.enqueue(encoder.encode(left-- > 1 ? '.' : '.\n'));
          if (left === 0) controller.close();
          resolve();
        }, 1000);
      });
    },
    cancel() {
      clearTimeout(timer);
    },
  });
}
