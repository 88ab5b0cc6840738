import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestScope, scopeOf } from '../src/host.ts';
import { GracePeriodExceededError, ScopeClosedError } from '../src/index.ts';
import { generatorStream, recordingStream } from './fixtures/streams.ts';

function scopeWithReports(gracePeriodMs = 1000): { scope: RequestScope; reported: unknown[] } {
  const reported: unknown[] = [];
  return { scope: new RequestScope({ gracePeriodMs, onError: (error) => reported.push(error) }), reported };
}

describe('RequestScope', () => {
  describe('close()', () => {
    it('runs once, whoever calls it and however often; the first outcome wins', async () => {
      const { scope } = scopeWithReports();
      let finishers = 0;
      scope.addFinisher(() => {
        finishers++;
      });
      const first = scope.close('aborted');
      const second = scope.close('completed');
      assert.equal(first, second);
      const info = await first;
      await scope.close('errored', new Error('late'));
      assert.equal(finishers, 1);
      assert.equal(info.outcome, 'aborted');
      assert.equal('error' in info, false);
    });

    it('fills in status, bytesSent, durationMs and the first error', async () => {
      const { scope } = scopeWithReports();
      scope.status = 201;
      scope.bytesSent = 42;
      scope.fail(new Error('first'));
      scope.fail(new Error('second'));
      const info = await scope.close('errored', new Error('third'));
      assert.equal(info.status, 201);
      assert.equal(info.bytesSent, 42);
      assert.ok(info.durationMs >= 0);
      assert.equal((info.error as Error).message, 'first');
    });

    it('waits for layers still running before finishing', async () => {
      const { scope } = scopeWithReports();
      const log: string[] = [];
      scope.addFinisher(() => {
        log.push('finished');
      });
      scope.enter();
      const logged = (): string[] => log;
      const closed = scope.close('aborted').then(() => log.push('close resolved'));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(logged(), []);
      log.push('layer returned');
      scope.leave();
      await closed;
      assert.deepEqual(log, ['layer returned', 'finished', 'close resolved']);
    });

    it('cancels open bodies, then runs onClose callbacks last-first, then finishers innermost-first', async () => {
      const { scope } = scopeWithReports();
      const log: string[] = [];
      const source = recordingStream({ chunks: Number.POSITIVE_INFINITY, log, name: 'body' });
      scope.track(new Response(source.stream), 'the application');
      scope.context.onClose(() => {
        log.push('onClose first registered');
      });
      scope.context.onClose(() => {
        log.push('onClose last registered');
      });
      scope.addFinisher(() => {
        log.push('outer handler finished');
      });
      scope.addFinisher(() => {
        log.push('inner handler finished');
      });
      await scope.close('aborted');
      assert.deepEqual(log, [
        'body cancelled',
        'onClose last registered',
        'onClose first registered',
        'inner handler finished',
        'outer handler finished',
      ]);
      assert.ok(source.cancelReason instanceof ScopeClosedError);
    });

    it("waits for an async generator's finally before finishing", async () => {
      const { scope } = scopeWithReports();
      const log: string[] = [];
      const generator = generatorStream({ delayMs: 20, log });
      const response = scope.track(new Response(generator.stream), 'the application');
      const reader = response.body!.getReader();
      await reader.read();
      const pending = reader.read().catch((error: unknown) => error); // a read pending inside the generator's await
      scope.addFinisher(() => {
        log.push('finished');
      });
      await scope.close('aborted');
      assert.deepEqual(log, ['generator finally', 'finished']);
      assert.ok((await pending) instanceof ScopeClosedError, 'the reader left behind sees the scope closing');
    });
  });

  describe('end()', () => {
    it('closes as close() does, once, without the caller waiting', async () => {
      const { scope } = scopeWithReports();
      let finishers = 0;
      scope.addFinisher(() => {
        finishers++;
      });
      scope.end('completed');
      scope.end('aborted');
      assert.equal(finishers, 1, 'nothing to wait for: finished before end() returned');
      const info = await scope.finished;
      assert.equal(info.outcome, 'completed');
      assert.equal(await scope.close('errored'), info);
      assert.equal(finishers, 1);
    });

    it("runs the owner's onFinished once, after every finisher, and reports it if it throws", async () => {
      const log: string[] = [];
      const reported: unknown[] = [];
      const scope = new RequestScope({
        onError: (error) => reported.push(error),
        onFinished: () => {
          log.push('owner');
          throw new Error('owner failed');
        },
      });
      for (const name of ['outer', 'middle', 'inner']) {
        scope.addFinisher(() => {
          log.push(name);
        });
      }
      scope.end('aborted');
      scope.end('completed');
      await scope.finished;
      assert.deepEqual(log, ['inner', 'middle', 'outer', 'owner']);
      assert.equal((reported[0] as Error).message, 'owner failed');
    });
  });

  describe('the grace period', () => {
    it('reports a cancellation that never settles and finishes anyway', async () => {
      const { scope, reported } = scopeWithReports(30);
      const stuck = new ReadableStream({
        cancel: () => new Promise(() => {}),
      });
      scope.track(new Response(stuck), 'the application');
      const info = await scope.close('aborted');
      assert.equal(info.outcome, 'aborted');
      assert.equal(reported.length, 1);
      assert.ok(reported[0] instanceof GracePeriodExceededError);
      assert.match(
        (reported[0] as Error).message,
        /1 response body did not settle within 30 ms of the request closing/,
      );
    });

    it('waits for layers still running at most that long, then names them, innermost first, and finishes', async () => {
      const { scope, reported } = scopeWithReports(30);
      const never = new Promise<Response>(() => {});
      const settles = Promise.resolve(new Response('x'));
      void scope.trackLater(never, 'the application stuck');
      void scope.trackLater(never, 'middleware waiting');
      await scope.trackLater(settles, 'middleware done');
      let closedAfter = false;
      scope.context.onClose(() => {
        closedAfter = true;
      });
      const info = await scope.close('completed');
      assert.equal(info.outcome, 'completed');
      assert.equal(closedAfter, true, 'the close callbacks ran all the same');
      assert.equal(reported.length, 1);
      const error = reported[0] as GracePeriodExceededError;
      assert.ok(error instanceof GracePeriodExceededError);
      assert.deepEqual(error.running, ['the application stuck', 'middleware waiting']);
      assert.match(
        error.message,
        /^tsgi: the application stuck \(middleware waiting waiting on it\) was still running 30 ms after the request was over/,
      );
    });

    it('names the application first when a retry tracked it after the layer that called it', async () => {
      const { scope, reported } = scopeWithReports(30);
      const never = new Promise<Response>(() => {});
      void scope.trackLater(never, 'middleware retries'); // its promise came first…
      void scope.trackLater(never, 'the application flaky'); // …its second next() afterwards
      await scope.close('completed');
      assert.deepEqual((reported[0] as GracePeriodExceededError).running, [
        'the application flaky',
        'middleware retries',
      ]);
    });

    it('aborts context.signal with the reason abort() was given, before closing', async () => {
      const { scope } = scopeWithReports(30);
      const reason = new Error('the host gave up');
      const signal = scope.context.signal;
      scope.abort(reason);
      assert.equal(signal.aborted, true);
      assert.equal(signal.reason, reason);
      assert.equal(scope.isClosing, false, 'the request goes on');
      const info = await scope.close('completed');
      assert.equal(info.error, reason, 'recorded as the failure');
      assert.equal(scope.context.signal.reason, reason);
    });

    it('reports an onClose callback that never settles and finishes anyway', async () => {
      const { scope, reported } = scopeWithReports(30);
      let finished = false;
      scope.context.onClose(() => new Promise(() => {}));
      scope.addFinisher(() => {
        finished = true;
      });
      await scope.close('completed');
      assert.equal(finished, true);
      assert.match((reported[0] as Error).message, /1 onClose callback did not settle/);
    });
  });

  describe('context.onClose()', () => {
    it('isolates a callback that throws or rejects and runs the others', async () => {
      const { scope, reported } = scopeWithReports();
      const ran: string[] = [];
      scope.context.onClose(() => {
        ran.push('first');
      });
      scope.context.onClose(() => {
        throw new Error('sync broke');
      });
      scope.context.onClose(async () => {
        throw new Error('async broke');
      });
      scope.context.onClose(() => {
        ran.push('last');
      });
      await scope.close('completed');
      assert.deepEqual(ran, ['last', 'first']);
      assert.deepEqual(
        reported.map((error) => (error as Error).message),
        ['sync broke', 'async broke'],
      );
    });

    it('gives each callback the finish info', async () => {
      const { scope } = scopeWithReports();
      scope.status = 200;
      let seen: unknown;
      scope.context.onClose((info) => {
        seen = info;
      });
      await scope.close('completed');
      assert.deepEqual(Object.keys(seen as object).sort(), ['bytesSent', 'durationMs', 'outcome', 'status']);
    });

    it('runs a callback registered after the request was over at once', async () => {
      const { scope } = scopeWithReports();
      await scope.close('completed');
      let ran = false;
      scope.context.onClose(() => {
        ran = true;
      });
      assert.equal(ran, true);
    });

    it('runs a callback registered by a finisher at once, with the same finish info', () => {
      const { scope } = scopeWithReports();
      scope.status = 204;
      const seen: unknown[] = [];
      scope.addFinisher(() => {
        scope.context.onClose((info) => {
          seen.push(info);
        });
      });
      scope.end('completed');
      assert.equal(seen.length, 1, 'ran before end() returned, as no callback was waiting');
      assert.deepEqual(seen[0], {
        status: 204,
        bytesSent: 0,
        durationMs: scope.durationMs,
        outcome: 'completed',
      });
    });

    it('rejects a callback that is not a function', () => {
      const { scope } = scopeWithReports();
      assert.throws(() => scope.context.onClose('x' as never), /callback must be a function/);
    });
  });

  describe('finishers', () => {
    it('get the scope, and the request and context they were registered with, after every callback', () => {
      const { scope } = scopeWithReports();
      const request = new Request('http://127.0.0.1/finisher');
      const log: string[] = [];
      const calls: unknown[][] = [];
      scope.context.onClose(() => {
        log.push('onClose');
      });
      scope.addFinisher(
        (...args) => {
          log.push('outer');
          calls.push(args);
        },
        request,
        scope.context,
      );
      scope.addFinisher(() => {
        log.push('inner');
      });
      scope.fail(new Error('boom'));
      scope.status = 500;
      scope.end('completed');
      assert.deepEqual(log, ['onClose', 'inner', 'outer']);
      assert.equal(calls.length, 1);
      assert.equal(calls[0]![0], scope);
      assert.equal(calls[0]![1], request);
      assert.equal(calls[0]![2], scope.context);
      assert.equal(scope.outcome, 'completed');
      assert.ok(scope.durationMs >= 0);
      assert.equal((scope.failure!.error as Error).message, 'boom');
    });

    it('report a finisher that throws and still run the others', () => {
      const { scope, reported } = scopeWithReports();
      let ran = false;
      scope.addFinisher(() => {
        ran = true;
      });
      scope.addFinisher(() => {
        throw new Error('finisher broke');
      });
      scope.end('aborted');
      assert.equal(ran, true);
      assert.deepEqual(
        reported.map((error) => (error as Error).message),
        ['finisher broke'],
      );
    });
  });

  describe('tracking', () => {
    it('cancels at once a body tracked once closing has begun', async () => {
      const { scope } = scopeWithReports();
      scope.enter();
      const closed = scope.close('aborted');
      const source = recordingStream();
      scope.track(new Response(source.stream), 'the application');
      scope.leave();
      await closed;
      assert.equal(source.cancelled, true);
    });

    it('cancels a body tracked after the scope finished', async () => {
      const { scope } = scopeWithReports();
      await scope.close('aborted');
      const source = recordingStream();
      scope.track(new Response(source.stream), 'the application');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(source.cancelled, true);
    });

    it('leaves a body alone that was read to the end', async () => {
      const { scope } = scopeWithReports();
      const source = recordingStream({ chunks: 1 });
      const response = scope.track(new Response(source.stream), 'the application');
      await response.text();
      await scope.close('completed');
      assert.equal(source.cancelled, false);
      assert.equal(source.completed, true);
    });

    it('does not proxy a body it already knows', () => {
      const { scope } = scopeWithReports();
      const proxied = scope.track(new Response(recordingStream().stream), 'the application');
      const rewrapped = new Response(proxied.body, { headers: { 'x-extra': '1' } });
      assert.equal(scope.track(rewrapped, 'middleware m'), rewrapped);
    });
  });

  describe('context', () => {
    it('leads back to its scope', () => {
      const { scope } = scopeWithReports();
      assert.equal(scopeOf(scope.context), scope);
      assert.equal(scopeOf({}), undefined);
      assert.equal(scopeOf(undefined), undefined);
    });

    it('has a stable unique id, a state bag and the remote address', () => {
      const a = new RequestScope({ remoteAddress: '127.0.0.1' }).context;
      const b = new RequestScope().context;
      assert.equal(a.id, a.id);
      assert.notEqual(a.id, b.id);
      assert.match(a.id, /^[0-9a-f-]{36}$/);
      a.state.user = 'ada';
      assert.equal(a.state.user, 'ada');
      assert.equal(a.remoteAddress, '127.0.0.1');
      assert.equal(b.remoteAddress, undefined);
    });

    it('shares id, state, signal and onClose with a context derived from it', async () => {
      const scope = new RequestScope();
      const derived = Object.create(scope.context) as typeof scope.context & { mountPath: string };
      derived.mountPath = '/api';
      assert.equal(derived.id, scope.context.id);
      derived.state.user = 'ada';
      assert.equal(scope.context.state.user, 'ada');
      assert.equal(derived.signal, scope.context.signal);
      assert.equal(scopeOf(derived), scope);
      let closed = false;
      derived.onClose(() => {
        closed = true;
      });
      await scope.close('completed');
      assert.equal(closed, true);
    });

    it('aborts its signal when the client goes away, also when first read afterwards', async () => {
      const early = new RequestScope();
      const signal = early.context.signal;
      assert.equal(signal.aborted, false);
      await early.close('aborted');
      assert.equal(signal.aborted, true);
      assert.ok(signal.reason instanceof ScopeClosedError);

      const late = new RequestScope();
      await late.close('errored');
      assert.equal(late.context.signal.aborted, true);
    });

    it('does not abort its signal when the response completed', async () => {
      const scope = new RequestScope();
      const signal = scope.context.signal;
      await scope.close('completed');
      assert.equal(signal.aborted, false);
    });
  });
});
