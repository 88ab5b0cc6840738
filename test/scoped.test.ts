/**
 * `scoped(acquire, release)` in-process: through a handler inside a scope owned the way a server
 * owns it (fixtures/host.ts), for every way a request can end. The same rules against a real
 * PostgreSQL and Redis are in test/services/.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Application,
  createHandler,
  defineMiddleware,
  type FinishInfo,
  type Middleware,
  mount,
  ReleaseFailedError,
  type RequestContext,
  RequestOverError,
  SignalBus,
  scoped,
} from '../src/index.ts';
import { deferred } from './fixtures/client.ts';
import { exchange } from './fixtures/host.ts';
import { readText, recordingStream } from './fixtures/streams.ts';

const request = (path = '/') => new Request(`http://127.0.0.1${path}`);

interface Value {
  readonly n: number;
}

/** A resource that logs each acquisition and release, and counts them. */
function resource(log: string[] = [], name = 'resource') {
  const record = { made: 0, released: [] as { value: Value; info: FinishInfo }[], log };
  const accessor = scoped(
    function open(): Value {
      const value = { n: ++record.made };
      log.push(`${name} ${value.n} acquired`);
      return value;
    },
    (value, info) => {
      log.push(`${name} ${value.n} released ${info.outcome}`);
      record.released.push({ value, info });
    },
  );
  return { ...record, accessor, record };
}

/** A handler on a bus of its own, whose reports land in a list. */
function site(app: Application, middleware: Middleware[] = []) {
  const reported: { error: unknown; where: string }[] = [];
  const bus = new SignalBus({ onError: (error, where) => reported.push({ error, where }) });
  return { handler: createHandler(app, { middleware, signals: bus }), bus, reported };
}

const ok = (text = 'ok') => new Response(text);

describe('scoped()', () => {
  it('throws a TypeError naming the argument when acquire or release is not a function', () => {
    assert.throws(() => scoped(undefined as never, () => {}), {
      name: 'TypeError',
      message: /acquire must be a function, got undefined/,
    });
    assert.throws(() => scoped(() => 1, null as never), {
      name: 'TypeError',
      message: /release must be a function, got object .*pass \(\) => \{\}/,
    });
  });

  it('rejects with a TypeError asking for the context when it is given the request instead', async () => {
    const { accessor } = resource();
    await assert.rejects(accessor(request() as unknown as RequestContext), {
      name: 'TypeError',
      message: /needs the request's context .*got a Request \(pass the context, not the request\)/,
    });
  });
});

describe('acquiring', () => {
  it('acquires nothing for a request that never asks', async () => {
    const db = resource();
    const { handler } = site(() => ok());
    const result = await exchange(handler, request());
    assert.equal(result.text, 'ok');
    assert.equal(db.record.made, 0);
    assert.deepEqual(db.record.released, []);
  });

  it('acquires on first use and hands every layer of the request the same value', async () => {
    const db = resource();
    const seen: Value[] = [];
    const outer = defineMiddleware(async (req, context, next) => {
      seen.push(await db.accessor(context));
      return next(req);
    });
    const { handler } = site(
      async (_req, context) => {
        seen.push(await db.accessor(context));
        seen.push(await db.accessor(context));
        return ok();
      },
      [outer],
    );
    await exchange(handler, request());
    assert.equal(db.record.made, 1);
    assert.equal(seen.length, 3);
    assert.ok(
      seen.every((value) => value === seen[0]),
      'the same value in the middleware and the app',
    );
    assert.equal(db.record.released.length, 1);
  });

  it('shares one acquisition between first calls made at the same time', async () => {
    const gate = deferred<Value>();
    let acquisitions = 0;
    const db = scoped(
      () => {
        acquisitions++;
        return gate.promise;
      },
      () => {},
    );
    const { handler } = site(async (_req, context) => {
      const all = Promise.all([db(context), db(context), db(context)]);
      gate.resolve({ n: 1 });
      const values = await all;
      return ok(String(new Set(values).size));
    });
    const result = await exchange(handler, request());
    assert.equal(acquisitions, 1);
    assert.equal(result.text, '1');
  });

  it('gives two requests in flight at once two values, each released with its own request', async () => {
    const db = resource();
    const bothIn = deferred();
    let inside = 0;
    const { handler } = site(async (req, context) => {
      const value = await db.accessor(context);
      if (++inside === 2) bothIn.resolve();
      await bothIn.promise;
      return ok(`${new URL(req.url).pathname} ${value.n}`);
    });
    const [a, b] = await Promise.all([exchange(handler, request('/a')), exchange(handler, request('/b'))]);
    assert.equal(db.record.made, 2);
    assert.notEqual(a.text.split(' ')[1], b.text.split(' ')[1], 'each request had its own value');
    assert.deepEqual(db.record.released.map(({ value }) => value.n).sort(), [1, 2]);
  });

  it('shares the value with an application mounted inside the request (its context is derived)', async () => {
    const db = resource();
    const seen: Value[] = [];
    const outer = defineMiddleware(async (req, context, next) => {
      seen.push(await db.accessor(context));
      return next(req);
    });
    const api: Application = async (_req, context) => {
      seen.push(await db.accessor(context));
      return ok();
    };
    const { handler } = site(mount({ '/api': api }), [outer]);
    await exchange(handler, request('/api/users'));
    assert.equal(db.record.made, 1);
    assert.equal(seen[0], seen[1]);
  });
});

describe('releasing', () => {
  it('releases once, told completed, after the response was read in full', async () => {
    const log: string[] = [];
    const db = resource(log);
    const { handler, bus } = site(async (_req, context) => {
      await db.accessor(context);
      return new Response(recordingStream({ chunks: 2, log, name: 'body' }).stream);
    });
    bus.connect('request_finished', () => {
      log.push('request_finished');
    });
    const result = await exchange(handler, request());
    assert.equal(result.text, 'chunk 0;chunk 1;');
    assert.deepEqual(log, [
      'resource 1 acquired',
      'body completed',
      'resource 1 released completed',
      'request_finished',
    ]);
    const { info } = db.record.released[0]!;
    assert.deepEqual([info.status, info.bytesSent, 'error' in info], [200, 16, false]);
  });

  it('releases once, told aborted, after the layer returns when the client left before the response', async () => {
    const log: string[] = [];
    const db = resource(log);
    const { handler } = site(async (_req, context) => {
      await db.accessor(context);
      const { signal } = context;
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve));
      // Outlive the abort by a turn: the release must still wait for this layer.
      await new Promise((resolve) => setImmediate(resolve));
      log.push('layer returned');
      return ok('never read');
    });
    const result = await exchange(handler, request(), 'leave-before-response');
    assert.equal(result.info.outcome, 'aborted');
    assert.deepEqual(log, ['resource 1 acquired', 'layer returned', 'resource 1 released aborted']);
  });

  it('releases once, told aborted, after the body is cancelled when the client leaves midway', async () => {
    const log: string[] = [];
    const db = resource(log);
    const { handler } = site(async (_req, context) => {
      await db.accessor(context);
      return new Response(recordingStream({ chunks: Number.POSITIVE_INFINITY, log, name: 'body' }).stream);
    });
    await exchange(handler, request(), 'read-part-then-leave');
    assert.deepEqual(log, ['resource 1 acquired', 'body cancelled', 'resource 1 released aborted']);
  });

  it('releases once, told errored and the error, when the body fails midway', async () => {
    const db = resource();
    const { handler } = site(async (_req, context) => {
      await db.accessor(context);
      return new Response(recordingStream({ chunks: 3, failAt: 1 }).stream);
    });
    await exchange(handler, request(), 'read-all', { onError: () => {} });
    assert.equal(db.record.released.length, 1);
    const { info } = db.record.released[0]!;
    assert.equal(info.outcome, 'errored');
    assert.match((info.error as Error).message, /failed at chunk 1/);
  });

  for (const how of ['synchronously', 'asynchronously'] as const) {
    it(`releases once, told the error, when the application throws ${how} after acquiring`, async () => {
      const db = resource();
      const boom = new Error('boom');
      const app: Application =
        how === 'synchronously'
          ? (_req, context) => {
              void db.accessor(context);
              throw boom;
            }
          : async (_req, context) => {
              await db.accessor(context);
              throw boom;
            };
      const { handler } = site(app);
      const result = await exchange(handler, request());
      assert.equal(result.status, 500);
      assert.equal(db.record.released.length, 1);
      const { info } = db.record.released[0]!;
      // The 500 page reached the client: completed, but with the error, so a transaction rolls back.
      assert.deepEqual([info.outcome, info.status, info.error], ['completed', 500, boom]);
    });
  }

  it('releases once, told aborted, when a fetch host cancels the body', async () => {
    const db = resource();
    const { handler, bus } = site(async (_req, context) => {
      await db.accessor(context);
      return new Response(recordingStream({ chunks: Number.POSITIVE_INFINITY }).stream);
    });
    const finished = new Promise<void>((resolve) => bus.connect('request_finished', () => resolve()));
    const response = await handler.fetch(request());
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    await finished;
    assert.equal(db.record.released.length, 1);
    assert.equal(db.record.released[0]!.info.outcome, 'aborted');
  });

  it('releases after a streamed body that reads from the value has finished with it', async () => {
    const log: string[] = [];
    const db = resource(log);
    const { handler } = site(async (_req, context) => {
      const value = await db.accessor(context);
      let row = 0;
      const rows = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (row === 2) {
            log.push('rows done');
            controller.close();
            return;
          }
          log.push(`row ${row} from resource ${value.n}`);
          controller.enqueue(new TextEncoder().encode(`row ${row++}\n`));
        },
      });
      return new Response(rows);
    });
    const result = await exchange(handler, request());
    assert.equal(result.text, 'row 0\nrow 1\n');
    assert.deepEqual(log, [
      'resource 1 acquired',
      'row 0 from resource 1',
      'row 1 from resource 1',
      'rows done',
      'resource 1 released completed',
    ]);
  });

  it('releases several resources in the reverse order of their first use', async () => {
    const log: string[] = [];
    const db = resource(log, 'db');
    const cache = resource(log, 'cache');
    const { handler } = site(async (_req, context) => {
      await db.accessor(context);
      await cache.accessor(context);
      return ok();
    });
    await exchange(handler, request());
    assert.deepEqual(log, [
      'db 1 acquired',
      'cache 1 acquired',
      'cache 1 released completed',
      'db 1 released completed',
    ]);
  });

  it('waits for an async release before request_finished', async () => {
    const log: string[] = [];
    const db = scoped(
      () => 'client',
      async () => {
        await new Promise((resolve) => setImmediate(resolve));
        log.push('released');
      },
    );
    const { handler, bus } = site(async (_req, context) => {
      await db(context);
      return ok();
    });
    const finished = new Promise<void>((resolve) =>
      bus.connect('request_finished', () => {
        log.push('request_finished');
        resolve();
      }),
    );
    await readText((await handler.fetch(request())).body);
    await finished;
    assert.deepEqual(log, ['released', 'request_finished']);
  });
});

describe('when acquire fails', () => {
  it('gives every caller of that attempt the error, releases nothing, and lets a later call try again', async () => {
    let attempts = 0;
    const released: string[] = [];
    const db = scoped(
      async () => {
        if (++attempts === 1) throw new Error('pool timeout');
        return `client ${attempts}`;
      },
      (client) => {
        released.push(client);
      },
    );
    const { handler } = site(async (_req, context) => {
      const first = await Promise.allSettled([db(context), db(context)]);
      const reasons = first.map((result) =>
        result.status === 'rejected' ? (result.reason as Error).message : '',
      );
      const client = await db(context);
      return ok(`${reasons.join(',')} then ${client}`);
    });
    const result = await exchange(handler, request());
    assert.equal(result.text, 'pool timeout,pool timeout then client 2');
    assert.equal(attempts, 2);
    assert.deepEqual(released, ['client 2']);
  });

  it('turns a synchronous throw into a rejection, and releases nothing', async () => {
    let released = 0;
    const db = scoped(
      (): string => {
        throw new Error('no such database');
      },
      () => {
        released++;
      },
    );
    const { handler } = site(async (_req, context) => {
      await db(context);
      return ok();
    });
    const result = await exchange(handler, request());
    assert.equal(result.status, 500);
    assert.match(String((result.info.error as Error).message), /no such database/);
    assert.equal(released, 0);
  });
});

describe('after the request is over', () => {
  it('rejects with RequestOverError for a context kept past the request, and does not release twice', async () => {
    const db = resource();
    let kept: RequestContext | undefined;
    const { handler } = site(async (_req, context) => {
      kept = context;
      await db.accessor(context);
      return ok();
    });
    await exchange(handler, request());
    await assert.rejects(db.accessor(kept!), (error: unknown) => {
      assert.ok(error instanceof RequestOverError);
      assert.equal(error.outcome, 'completed');
      assert.match(error.message, /from open\(\) was asked for after its request was over \(completed\)/);
      return true;
    });
    assert.equal(db.record.made, 1);
    assert.equal(db.record.released.length, 1);
  });

  it('rejects with RequestOverError and acquires nothing when first asked after the request', async () => {
    const db = resource();
    let kept: RequestContext | undefined;
    const { handler } = site((_req, context) => {
      kept = context;
      return ok();
    });
    await exchange(handler, request(), 'leave-before-response');
    await assert.rejects(db.accessor(kept!), { name: 'RequestOverError', outcome: 'aborted' });
    assert.equal(db.record.made, 0);
  });

  it('releases an acquisition still under way when the request closed as soon as it arrives; its caller gets RequestOverError', async () => {
    const gate = deferred<string>();
    const closing = deferred();
    const released: [string, string][] = [];
    const db = scoped(
      () => gate.promise,
      (client, info) => {
        released.push([client, info.outcome]);
      },
    );
    let late: unknown;
    const { handler } = site((_req, context) => {
      context.onClose(() => closing.resolve()); // registered first, so it runs after db's release began
      // Nobody awaits this: the request is over before the client arrives.
      db(context).catch((error: unknown) => {
        late = error;
      });
      return ok();
    });
    const done = exchange(handler, request());
    await closing.promise;
    assert.deepEqual(released, [], 'nothing to release yet');
    gate.resolve('client');
    const result = await done;
    assert.equal(result.info.outcome, 'completed');
    assert.deepEqual(released, [['client', 'completed']]);
    assert.ok(late instanceof RequestOverError, 'the caller never gets a released value');
  });
});

describe('when release fails', () => {
  it('reports a ReleaseFailedError with the cause to the bus, and the request still finishes', async () => {
    const cause = new Error('COMMIT failed: connection lost');
    const db = scoped(
      function transaction() {
        return 'client';
      },
      () => {
        throw cause;
      },
    );
    const { handler, bus, reported } = site(async (_req, context) => {
      await db(context);
      return ok('answered');
    });
    const finished = new Promise<FinishInfo>((resolve) => bus.connect('request_finished', resolve));
    const text = await readText((await handler.fetch(request())).body);
    const info = await finished;
    assert.equal(text, 'answered');
    assert.equal(info.outcome, 'completed');
    assert.equal(reported.length, 1);
    const [{ error, where }] = reported as [{ error: unknown; where: string }];
    assert.equal(where, 'request_scope');
    assert.ok(error instanceof ReleaseFailedError);
    assert.equal(error.cause, cause);
    assert.equal(error.outcome, 'completed');
    assert.match(error.message, /releasing the scoped resource from transaction\(\) failed .*completed/);
  });
});
