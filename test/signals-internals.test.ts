/**
 * The bus's one reliance on eventemitter3's internals: dispatch reads `_events` directly. The probe
 * that checks that shape at load must find it on the installed eventemitter3 (if an upgrade changes
 * it, this file fails first, loudly), and the fallback through the public API must dispatch exactly
 * as the fast path does — checked by running the same cases both ways.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EventEmitter } from 'eventemitter3';
import type { Handler, RequestContext, RequestStartedEvent } from '../src/index.ts';
import { ReceiverError } from '../src/report.ts';
import { forcePublicDispatch, listenerStore, SignalBus } from '../src/signals.ts';

const started = (): RequestStartedEvent => ({
  sender: (() => new Response()) as unknown as Handler,
  request: new Request('http://127.0.0.1/'),
  context: {} as RequestContext,
});

function quietBus(): { bus: SignalBus; reported: unknown[] } {
  const reported: unknown[] = [];
  return { bus: new SignalBus({ onError: (error) => reported.push(error) }), reported };
}

describe("eventemitter3's listener storage", () => {
  it('is the shape the probe expects on the installed eventemitter3', () => {
    // No prefix where Object.create(null) exists (everywhere tsgi runs).
    assert.equal(EventEmitter.prefixed, false);
    assert.deepEqual(listenerStore, { prefix: '' });
  });
});

for (const mode of ['the fast path', 'the public-API fallback'] as const) {
  describe(`dispatch through ${mode}`, () => {
    const use = (): void => forcePublicDispatch(mode === 'the public-API fallback');
    afterEach(() => forcePublicDispatch(false));

    it('calls every receiver, in order, with the payload', () => {
      use();
      const { bus } = quietBus();
      const calls: string[] = [];
      const payload = started();
      bus.connect('request_started', (event) => {
        calls.push(event === payload ? 'first' : 'wrong payload');
      });
      bus.connect('request_started', () => {
        calls.push('second');
      });
      assert.equal(bus.emit('request_started', payload), true);
      assert.deepEqual(calls, ['first', 'second']);
    });

    it('isolates a receiver that throws and reports it', () => {
      use();
      const { bus, reported } = quietBus();
      const calls: string[] = [];
      bus.connect('request_started', function broken() {
        throw new Error('boom');
      });
      bus.connect('request_started', () => {
        calls.push('after');
      });
      assert.doesNotThrow(() => bus.emit('request_started', started()));
      assert.deepEqual(calls, ['after']);
      assert.ok(reported[0] instanceof ReceiverError);
      assert.equal((reported[0] as ReceiverError).receiver, 'broken');
    });

    it('reports an async rejection, and dispatch() returns a promise for it that resolves', async () => {
      use();
      const { bus, reported } = quietBus();
      bus.connect('request_started', async () => {
        throw new Error('late');
      });
      const pending = bus.dispatch('request_started', started());
      assert.ok(pending instanceof Promise);
      await pending;
      assert.equal(reported.length, 1);
    });

    it('returns false with no receivers, undefined when all were synchronous', () => {
      use();
      const { bus } = quietBus();
      assert.equal(bus.dispatch('request_started', started()), false);
      bus.connect('request_started', () => {});
      assert.equal(bus.dispatch('request_started', started()), undefined);
    });

    it('runs a once() receiver once, and keeps the others', () => {
      use();
      const { bus } = quietBus();
      const calls: string[] = [];
      bus.once('request_started', () => {
        calls.push('once');
      });
      bus.on('request_started', () => {
        calls.push('always');
      });
      bus.emit('request_started', started());
      bus.emit('request_started', started());
      assert.deepEqual(calls, ['once', 'always', 'always']);
      assert.equal(bus.listenerCount('request_started'), 1);
    });

    it('calls a receiver with the context given to on(), else with the bus', () => {
      use();
      const { bus } = quietBus();
      const self = { name: 'given' };
      const seen: unknown[] = [];
      bus.on(
        'request_started',
        function (this: unknown) {
          seen.push(this);
        },
        self,
      );
      bus.on('request_started', function (this: unknown) {
        seen.push(this);
      });
      bus.emit('request_started', started());
      assert.deepEqual(seen, [self, bus]);
    });

    it('keeps a receiver connected to two events apart', () => {
      use();
      const { bus } = quietBus();
      let calls = 0;
      const receiver = (): void => {
        calls++;
      };
      bus.once('request_started', receiver);
      bus.on('got_request_exception', receiver);
      bus.emit('request_started', started());
      bus.emit('request_started', started());
      bus.emit('got_request_exception', { ...started(), error: new Error('x') });
      bus.emit('got_request_exception', { ...started(), error: new Error('x') });
      assert.equal(calls, 3);
    });

    it('takes a removal during dispatch into account from the next dispatch on', () => {
      use();
      const { bus } = quietBus();
      const calls: string[] = [];
      let second = () => {};
      bus.connect('request_started', () => {
        calls.push('first');
        second();
      });
      second = bus.connect('request_started', () => {
        calls.push('second');
      });
      bus.connect('request_started', () => {
        calls.push('third');
      });
      bus.emit('request_started', started());
      assert.deepEqual(calls, ['first', 'second', 'third']);
      calls.length = 0;
      bus.emit('request_started', started());
      assert.deepEqual(calls, ['first', 'third']);
    });

    it('dispatches nothing after every receiver was disconnected', () => {
      use();
      const { bus } = quietBus();
      let calls = 0;
      const disconnect = bus.connect('request_started', () => {
        calls++;
      });
      disconnect();
      assert.equal(bus.emit('request_started', started()), false);
      bus.removeAllListeners();
      assert.equal(bus.emit('request_started', started()), false);
      assert.equal(calls, 0);
    });
  });
}
