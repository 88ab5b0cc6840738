/**
 * Request-scoped resources: `scoped(acquire, release)` makes an accessor that gives each request its
 * own value (a database client inside a transaction, a batch of Redis commands), acquired on first
 * use and released exactly once when the request is over, with its outcome — so a transaction
 * commits when the response `completed` and rolls back when the client left or the response failed.
 *
 * When release runs: as a `context.onClose` callback, that is after the application and every
 * middleware have returned or thrown, after every response body has closed, and before
 * `request_finished` (DESIGN.md guarantee 2). Code still running never loses the resource under it,
 * and a streamed body that reads from it is done before it goes. (The one exception is a layer that
 * hangs past the grace period: it is reported by name and closing goes on without it, guarantee 6.)
 * Several resources are released in the reverse order of their first use (close callbacks run
 * last-registered first).
 *
 * The rules (each has a test in test/scoped.test.ts):
 * - A request that never calls the accessor acquires nothing and pays nothing.
 * - Calls in one request, from any layer and at the same time, share one acquisition; two requests
 *   never share a value. The value lives in `context.state`, under a key private to the accessor, so
 *   contexts derived from the request's own (`mount()` makes them) see the same value.
 * - If `acquire` throws or rejects, nothing is released, every caller waiting on that attempt gets
 *   the error, and the next call in the same request tries again: a failed attempt holds nothing,
 *   and a middleware that catches a pool timeout may want a second try. `acquire` must clean up
 *   after its own failure (a client that connected but whose `BEGIN` failed is released by acquire).
 * - Once release has started, the accessor rejects with {@link RequestOverError}. An acquisition
 *   still under way then (started by a timer or a promise nobody awaited) is released as soon as it
 *   arrives, and its caller gets `RequestOverError` rather than a released value.
 * - A `release` that throws or rejects is reported (a {@link ReleaseFailedError} to the bus's
 *   `onError`, where `'request_scope'`); it never changes the response, which has already been sent.
 *
 * Deciding to commit: `outcome` is `completed` for every response the client received in full, a
 * 500 page included; an exception the application raised is in `info.error`. A transaction
 * commits when `outcome === 'completed'` and no error was raised, and rolls back otherwise.
 *
 * Caveat: committing on `completed` commits after the client got the whole response, so a failed
 * COMMIT cannot turn a 200 into an error page. When the client must hear about it, commit inside the
 * handler before answering and keep `scoped()` as the safety net that rolls back everything else.
 * Releases take part in the scope's grace period (default 1 s): a slower one is reported and
 * `request_finished` goes ahead while the release goes on.
 */
import type { FinishInfo, RequestContext } from './types.ts';

/** Gives the request's value, acquiring it on the first call in that request. */
export type Scoped<T> = (context: RequestContext) => Promise<T>;

/** The accessor was called after its request was over (its release had started). */
export class RequestOverError extends Error {
  override name = 'RequestOverError';
  constructor(
    readonly resource: string,
    readonly outcome: FinishInfo['outcome'],
  ) {
    super(
      `tsgi: ${resource} was asked for after its request was over (${outcome}) — did a timer, a callback or an unawaited promise keep the context past the request? Request-scoped values are released when the request finishes.`,
    );
  }
}

/** Wraps what a scoped resource's `release` threw or rejected with; reported, never thrown at a request. */
export class ReleaseFailedError extends Error {
  override name = 'ReleaseFailedError';
  constructor(
    readonly resource: string,
    readonly outcome: FinishInfo['outcome'],
    options: { cause: unknown },
  ) {
    super(
      `tsgi: releasing ${resource} failed after a request that ${outcome === 'completed' ? 'completed (the client already has its response, so it was not told)' : `was ${outcome}`}`,
      options,
    );
  }
}

/**
 * Makes an accessor for a request-scoped resource: `acquire(context)` runs on the accessor's first
 * call in a request, and `release(value, info)` runs exactly once when that request is over, with
 * its {@link FinishInfo} (`outcome`, `error`, `status`…). See the module notes for the rules.
 *
 * @example
 * // A pg transaction per request: committed when the response completed, else rolled back.
 * import pg from 'pg';
 * import { scoped } from 'tsgi';
 *
 * const pool = new pg.Pool();
 * export const db = scoped(
 *   async function transaction() {
 *     const client = await pool.connect();
 *     try {
 *       await client.query('BEGIN');
 *     } catch (error) {
 *       client.release(error as Error); // discarded: a client that cannot BEGIN is not pooled again
 *       throw error;
 *     }
 *     return client;
 *   },
 *   async (client, info) => {
 *     // `completed` covers a 500 page too: commit only when nothing was raised.
 *     const commit = info.outcome === 'completed' && !('error' in info);
 *     try {
 *       await client.query(commit ? 'COMMIT' : 'ROLLBACK');
 *     } catch (error) {
 *       client.release(error as Error); // pg discards a client released with an error
 *       throw error;
 *     }
 *     client.release();
 *   },
 * );
 * // examples/scoped-pg/transaction.ts is this, plus the 'error' listener a checked-out client needs.
 *
 * const application: Application = async (request, context) => {
 *   const client = await db(context);
 *   await client.query('INSERT INTO visits (path) VALUES ($1)', [new URL(request.url).pathname]);
 *   return new Response('counted');
 * };
 *
 * @example
 * // Redis writes that happen only if the response completed: a MULTI queued per request.
 * import { createClient } from 'redis';
 * const redis = await createClient({ url: 'redis://127.0.0.1:6379' }).connect();
 * export const writes = scoped(
 *   () => redis.multi(),
 *   async (multi, info) => {
 *     // Otherwise the queued commands are simply never sent.
 *     if (info.outcome === 'completed' && !('error' in info)) await multi.exec();
 *   },
 * );
 * // in a layer: (await writes(context)).incr('hits');
 */
export function scoped<T>(
  acquire: (context: RequestContext) => T | Promise<T>,
  release: (value: T, info: FinishInfo) => void | Promise<void>,
): Scoped<T> {
  if (typeof acquire !== 'function') {
    throw new TypeError(`scoped(acquire, release): acquire must be a function, got ${typeof acquire}`);
  }
  if (typeof release !== 'function') {
    throw new TypeError(
      `scoped(acquire, release): release must be a function, got ${typeof release} — a resource nobody releases leaks; pass () => {} if there is truly nothing to release`,
    );
  }
  const resource = acquire.name ? `the scoped resource from ${acquire.name}()` : 'a scoped resource';
  // One key per accessor: two resources in one request never see each other's value.
  const key = Symbol(resource);

  return function scopedResource(context: RequestContext): Promise<T> {
    if (typeof context?.onClose !== 'function') {
      return Promise.reject(
        new TypeError(
          `tsgi: ${resource} needs the request's context (the second argument of an application), got ${describe(context)}`,
        ),
      );
    }
    const state = context.state;
    let entry = state[key] as Entry<T> | undefined;
    if (entry === undefined) {
      entry = new Entry(resource, acquire, release);
      state[key] = entry;
      // After the request, onClose runs the callback at once: the entry then knows it is over.
      context.onClose(entry.close);
    }
    return entry.get(context);
  };
}

/** One request's use of one resource. */
class Entry<T> {
  /** The current attempt (or the acquired value's promise); undefined before it and after a failure. */
  private promise: Promise<T> | undefined = undefined;
  private acquired = false;
  private released = false;
  private value: T | undefined = undefined;
  /** What the request ended with, once release has begun. */
  private info: FinishInfo | undefined = undefined;

  constructor(
    private readonly resource: string,
    private readonly acquire: (context: RequestContext) => T | Promise<T>,
    private readonly release: (value: T, info: FinishInfo) => void | Promise<void>,
  ) {}

  get(context: RequestContext): Promise<T> {
    if (this.info !== undefined)
      return Promise.reject(new RequestOverError(this.resource, this.info.outcome));
    this.promise ??= this.attempt(context);
    return this.promise;
  }

  /** The `context.onClose` callback: releases what was acquired, or what is still on its way. */
  readonly close = (info: FinishInfo): Promise<void> | undefined => {
    this.info = info;
    if (this.acquired) return this.releaseOnce(info);
    const pending = this.promise;
    if (pending === undefined) return undefined;
    // Still acquiring: the attempt rejects its callers once it sees `info`; release what it got.
    const afterwards = (): Promise<void> | undefined => (this.acquired ? this.releaseOnce(info) : undefined);
    return pending.then(afterwards, afterwards);
  };

  private attempt(context: RequestContext): Promise<T> {
    let result: T | Promise<T>;
    try {
      result = this.acquire(context);
    } catch (error) {
      result = Promise.reject(error);
    }
    const attempt: Promise<T> = Promise.resolve(result).then(
      (value) => {
        this.acquired = true;
        this.value = value;
        if (this.info !== undefined) throw new RequestOverError(this.resource, this.info.outcome);
        return value;
      },
      (error: unknown) => {
        // Nothing is held: forget the attempt so the next call tries again.
        if (this.promise === attempt) this.promise = undefined;
        throw error;
      },
    );
    return attempt;
  }

  private async releaseOnce(info: FinishInfo): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.release(this.value as T, info);
    } catch (error) {
      throw new ReleaseFailedError(this.resource, info.outcome, { cause: error });
    } finally {
      this.value = undefined;
    }
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return value instanceof Request
    ? 'a Request (pass the context, not the request)'
    : 'an object without onClose';
}
