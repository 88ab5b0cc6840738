/**
 * The lifecycle guarantee against misbehaving middleware: for every fixture in
 * fixtures/middleware.ts, with bodies that record whether they were cancelled, and every way a client
 * can end the exchange — request_started once, request_finished once and only after every abandoned
 * source was released, inFlight back to 0.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Application, createHandler, type RequestFinishedEvent, SignalBus } from '../src/index.ts';
import { type ClientBehaviour, exchange } from './fixtures/host.ts';
import { addsHeader, misbehaving, passesThrough } from './fixtures/middleware.ts';
import {
  type GeneratorRecorder,
  generatorStream,
  type Recorder,
  recordingStream,
  streamFrom,
} from './fixtures/streams.ts';

interface Run {
  started: number;
  finished: RequestFinishedEvent[];
  /** Whether every source the application made was released when request_finished fired. */
  releasedAtFinish: boolean[];
  exceptions: number;
  inFlight: number;
  status: number;
  text: string;
}

type BodyKind = 'string' | 'bytes' | 'null' | 'stream' | 'long stream' | 'generator' | 'failing stream';

/** An application whose every response body is recorded, of the given kind. */
function recordedApp(kind: BodyKind) {
  const sources: (Recorder | GeneratorRecorder)[] = [];
  const app: Application = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    switch (kind) {
      case 'string':
        return new Response('plain text body');
      case 'bytes':
        return new Response(new Uint8Array([104, 105]));
      case 'null':
        return new Response(null, { status: 204 });
      case 'stream': {
        const source = recordingStream({ chunks: 3 });
        sources.push(source);
        return new Response(source.stream);
      }
      case 'long stream': {
        // long enough that a layer which reads a little and drops the rest leaves most of it unread
        const source = recordingStream({ chunks: 50 });
        sources.push(source);
        return new Response(source.stream);
      }
      case 'generator': {
        const source = generatorStream({ chunks: 3, delayMs: 1 });
        sources.push(source);
        return new Response(source.stream);
      }
      case 'failing stream': {
        const source = recordingStream({ chunks: 5, failAt: 1 });
        sources.push(source);
        return new Response(source.stream);
      }
    }
  };
  const released = () => sources.map((source) => source.released);
  return { app, released, sources };
}

async function run(
  middleware: Parameters<typeof createHandler>[1] extends infer O
    ? O extends { middleware?: infer M }
      ? M
      : never
    : never,
  kind: BodyKind,
  behaviour: ClientBehaviour,
): Promise<Run> {
  const bus = new SignalBus({ onError: () => {} });
  const { app, released } = recordedApp(kind);
  const result: Run = {
    started: 0,
    finished: [],
    releasedAtFinish: [],
    exceptions: 0,
    inFlight: -1,
    status: 0,
    text: '',
  };
  bus.connect('request_started', () => {
    result.started++;
  });
  bus.connect('got_request_exception', () => {
    result.exceptions++;
  });
  bus.connect('request_finished', (event) => {
    result.finished.push(event);
    result.releasedAtFinish = released();
  });
  const handler = createHandler(app, { middleware, signals: bus });
  const { status, text } = await exchange(handler, new Request('http://127.0.0.1/'), behaviour);
  result.inFlight = handler.inFlight;
  result.status = status;
  result.text = text;
  return result;
}

function assertGuarantee(result: Run): void {
  assert.equal(result.started, 1, 'request_started fires once');
  assert.equal(result.finished.length, 1, 'request_finished fires once');
  assert.ok(
    result.releasedAtFinish.every(Boolean),
    `every source was released before request_finished (${JSON.stringify(result.releasedAtFinish)})`,
  );
  assert.equal(result.inFlight, 0, 'inFlight is back to 0');
}

const behaviours: ClientBehaviour[] = ['read-all', 'read-part-then-leave', 'leave-before-response'];

describe('the lifecycle guarantee', () => {
  for (const [name, fixture] of Object.entries(misbehaving)) {
    describe(`with middleware that ${name}`, () => {
      for (const behaviour of behaviours) {
        it(`holds when the client does ${behaviour}`, async () => {
          const result = await run([passesThrough(), fixture(), addsHeader()], 'long stream', behaviour);
          assertGuarantee(result);
        });
      }
    });
  }

  describe('with bodies of every kind', () => {
    for (const kind of ['string', 'bytes', 'null', 'stream', 'generator', 'failing stream'] as BodyKind[]) {
      for (const behaviour of behaviours) {
        it(`holds for a ${kind} body when the client does ${behaviour}`, async () => {
          const result = await run([passesThrough(), addsHeader()], kind, behaviour);
          assertGuarantee(result);
          if (behaviour === 'read-all' && kind === 'failing stream') {
            assert.equal(result.finished[0]?.outcome, 'errored');
            assert.match(String(result.finished[0]?.error), /failed at chunk 1/);
          } else if (behaviour === 'read-all') {
            assert.equal(result.finished[0]?.outcome, 'completed');
          }
        });
      }
    }

    it('delivers the whole body when nothing goes wrong', async () => {
      const result = await run([passesThrough(), addsHeader()], 'stream', 'read-all');
      assert.equal(result.text, 'chunk 0;chunk 1;chunk 2;');
      assert.equal(result.finished[0]?.bytesSent, 24);
    });
  });

  describe('with a body a layer tee()s', () => {
    it('cancels the source although the other branch is never read', async () => {
      const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
      let sourceReleasedAtFinish = false;
      const bus = new SignalBus({ onError: () => {} });
      bus.connect('request_finished', () => {
        sourceReleasedAtFinish = source.cancelled;
      });
      const teeing = misbehaving.teesBody();
      const handler = createHandler(() => new Response(source.stream), {
        middleware: [teeing],
        signals: bus,
      });
      await exchange(handler, new Request('http://127.0.0.1/'), 'read-part-then-leave', {
        gracePeriodMs: 100,
      });
      assert.equal(sourceReleasedAtFinish, true);
    });
  });

  describe('with an async generator body', () => {
    it("runs the generator's finally before request_finished when the client leaves mid-stream", async () => {
      const log: string[] = [];
      const generator = generatorStream({ delayMs: 10, log });
      const bus = new SignalBus();
      bus.connect('request_finished', () => {
        log.push('request_finished');
      });
      const handler = createHandler(() => new Response(generator.stream), { signals: bus });
      await exchange(handler, new Request('http://127.0.0.1/'), 'read-part-then-leave');
      assert.deepEqual(log, ['generator finally', 'request_finished']);
    });

    it('works for ReadableStream.from() of a plain iterable too', async () => {
      const handler = createHandler(() => new Response(streamFrom([new TextEncoder().encode('a')])), {
        signals: new SignalBus(),
      });
      const result = await exchange(handler, new Request('http://127.0.0.1/'));
      assert.equal(result.text, 'a');
    });
  });

  describe('when the application is still running as the client leaves', () => {
    it('waits for it to return, then cancels the body it returns at once', async () => {
      const log: string[] = [];
      const source = recordingStream({ chunks: Number.POSITIVE_INFINITY, log, name: 'late body' });
      let release = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const bus = new SignalBus();
      bus.connect('request_finished', () => {
        log.push('request_finished');
      });
      const handler = createHandler(
        async () => {
          await gate;
          log.push('application returned');
          return new Response(source.stream);
        },
        { signals: bus },
      );
      const pending = exchange(handler, new Request('http://127.0.0.1/'), 'leave-before-response');
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(log, [], 'request_finished waits for the application');
      release();
      await pending;
      assert.deepEqual(log, ['application returned', 'late body cancelled', 'request_finished']);
    });
  });

  describe('when a middleware throws while the inner layers still run', () => {
    it('waits for the inner application before request_finished', async () => {
      const log: string[] = [];
      const bus = new SignalBus({ onError: () => {} });
      bus.connect('request_finished', () => {
        log.push('request_finished');
      });
      const handler = createHandler(
        async () => {
          await new Promise((resolve) => setTimeout(resolve, 10));
          log.push('application returned');
          return new Response('late');
        },
        { middleware: [misbehaving.throwsAfterNextSync()], signals: bus },
      );
      const result = await exchange(handler, new Request('http://127.0.0.1/'));
      assert.equal(result.status, 500);
      assert.deepEqual(log, ['application returned', 'request_finished']);
    });
  });
});
