import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Handler, RequestContext, RequestStartedEvent } from '../src/index.ts';
import { ReceiverError, SignalBus, signals } from '../src/index.ts';

const started = (): RequestStartedEvent => ({
  sender: (() => new Response()) as unknown as Handler,
  request: new Request('http://127.0.0.1/'),
  context: {} as RequestContext,
});

function quietBus(): { bus: SignalBus; reported: unknown[] } {
  const reported: unknown[] = [];
  return { bus: new SignalBus({ onError: (error) => reported.push(error) }), reported };
}

describe('SignalBus', () => {
  describe('connect()', () => {
    it('calls the receiver with the payload and returns a disconnect function', () => {
      const { bus } = quietBus();
      const seen: RequestStartedEvent[] = [];
      const disconnect = bus.connect('request_started', (event) => {
        seen.push(event);
      });
      const payload = started();
      bus.emit('request_started', payload);
      disconnect();
      bus.emit('request_started', payload);
      assert.deepEqual(seen, [payload]);
    });

    it('disconnects only the receiver it connected', () => {
      const { bus } = quietBus();
      const calls: string[] = [];
      const first = bus.connect('request_started', () => {
        calls.push('first');
      });
      bus.connect('request_started', () => {
        calls.push('second');
      });
      first();
      bus.emit('request_started', started());
      assert.deepEqual(calls, ['second']);
    });

    it('rejects a receiver that is not a function with a clear error', () => {
      const { bus } = quietBus();
      assert.throws(
        () => bus.connect('request_started', 'nope' as never),
        /receiver must be a function, got string/,
      );
    });
  });

  describe('when a receiver throws', () => {
    it('reports it, runs the other receivers, and does not throw at the sender', () => {
      const { bus, reported } = quietBus();
      const calls: string[] = [];
      bus.connect('request_started', function broken() {
        throw new Error('boom');
      });
      bus.connect('request_started', () => {
        calls.push('after');
      });
      assert.equal(bus.emit('request_started', started()), true);
      assert.deepEqual(calls, ['after']);
      assert.equal(reported.length, 1);
      assert.ok(reported[0] instanceof ReceiverError);
      assert.match(
        (reported[0] as Error).message,
        /receiver broken of 'request_started' failed: Error: boom/,
      );
      assert.equal(((reported[0] as Error).cause as Error).message, 'boom');
    });

    it('still isolates when the only receiver throws', () => {
      const { bus, reported } = quietBus();
      bus.connect('request_started', () => {
        throw new Error('alone');
      });
      assert.doesNotThrow(() => bus.emit('request_started', started()));
      assert.equal(reported.length, 1);
    });

    it('survives a reporter that throws', () => {
      const bus = new SignalBus({
        onError: () => {
          throw new Error('reporter broke');
        },
      });
      const original = console.error;
      const printed: unknown[] = [];
      console.error = (value: unknown) => printed.push(value);
      try {
        bus.connect('request_started', () => {
          throw new Error('receiver broke');
        });
        assert.doesNotThrow(() => bus.emit('request_started', started()));
      } finally {
        console.error = original;
      }
      // Both go to stderr: what the receiver did, and that the reporter failed too.
      assert.equal(printed.length, 1);
      assert.match(String(printed[0]), /Error: receiver broke/);
      assert.match(String(printed[0]), /signals\.onError failed while reporting it:\nError: reporter broke/);
    });
  });

  describe('when a receiver is async', () => {
    it('reports a rejection without an unhandled rejection, and dispatch() waits for it', async () => {
      const { bus, reported } = quietBus();
      let unhandled = 0;
      const onUnhandled = () => unhandled++;
      process.on('unhandledRejection', onUnhandled);
      try {
        bus.connect('request_started', async () => {
          await Promise.resolve();
          throw new Error('late boom');
        });
        const calls: string[] = [];
        bus.connect('request_started', () => {
          calls.push('sync');
        });
        const pending = bus.dispatch('request_started', started());
        assert.deepEqual(calls, ['sync']);
        assert.ok(pending instanceof Promise);
        await pending;
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(reported.length, 1);
        assert.match((reported[0] as Error).message, /late boom/);
        assert.equal(unhandled, 0);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });

    it('dispatch() returns undefined when every receiver was synchronous, false when there was none', () => {
      const { bus } = quietBus();
      assert.equal(bus.dispatch('request_started', started()), false);
      bus.connect('request_started', () => {});
      assert.equal(bus.dispatch('request_started', started()), undefined);
    });
  });

  describe('eventemitter3 behaviour it keeps', () => {
    it('runs a once() receiver once', () => {
      const { bus } = quietBus();
      let calls = 0;
      bus.once('request_started', () => {
        calls++;
      });
      bus.emit('request_started', started());
      bus.emit('request_started', started());
      assert.equal(calls, 1);
    });

    it('passes the context given to on()', () => {
      const { bus } = quietBus();
      const self = { seen: false };
      bus.on(
        'request_started',
        function (this: typeof self) {
          this.seen = true;
        },
        self,
      );
      bus.emit('request_started', started());
      assert.equal(self.seen, true);
    });

    it('lets a receiver disconnect another during dispatch without skipping the rest', () => {
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
      // eventemitter3 snapshots its listener list: the removal takes effect from the next emit.
      assert.deepEqual(calls, ['first', 'second', 'third']);
      calls.length = 0;
      bus.emit('request_started', started());
      assert.deepEqual(calls, ['first', 'third']);
    });
  });

  it('exports a process-wide default bus', () => {
    assert.ok(signals instanceof SignalBus);
  });
});
