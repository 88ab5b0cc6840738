/**
 * `handler.fetch()` following the host's `request.signal`, as Bun and Deno use it to say that the
 * client left. An AbortController stands in for the host: its signal goes into the Request, and
 * aborting it is the client going away. The real runtimes are driven in runtimes.test.ts.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { RequestScope } from '../src/host.ts';
import {
  type BodyCloseReason,
  createHandler,
  type RequestContext,
  type RequestFinishedEvent,
  SignalBus,
  trackBody,
} from '../src/index.ts';
import { generatorStream, recordingStream } from './fixtures/streams.ts';

const encoder = new TextEncoder();

/** A request whose signal the test aborts, as a host does when its client leaves. */
function hostRequest(path = '/', init: RequestInit = {}) {
  const host = new AbortController();
  const request = new Request(`http://127.0.0.1${path}`, { ...init, signal: host.signal });
  return { host, request };
}

/**
 * A bus that records request_finished, and waits for it by event. The timer only turns a
 * request_finished that never comes into this test's failure, instead of a hang.
 */
function finishedRecorder() {
  const bus = new SignalBus({ onError: (error) => assert.fail(String(error)) });
  const finished: RequestFinishedEvent[] = [];
  bus.connect('request_finished', (event) => {
    finished.push(event);
  });
  const finishedCount = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        bus.off('request_finished', check);
        reject(new Error(`request_finished came ${finished.length} times, not ${count}, within 2 s`));
      }, 2000);
      const check = () => {
        if (finished.length < count) return;
        clearTimeout(timer);
        bus.off('request_finished', check);
        resolve();
      };
      bus.on('request_finished', check);
      check();
    });
  return { bus, finished, finishedCount };
}

/** One turn of the event loop: enough for anything already scheduled to have happened. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A promise and the function that settles it, for applications the test lets go of. */
function gate<T = void>() {
  let open!: (value: T) => void;
  const opened = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** A source whose every read waits until the test lets it go, so a read can be caught pending. */
function stalledSource() {
  const pulled = gate();
  const state = { cancelled: false };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull() {
        pulled.open();
        return new Promise<void>(() => {});
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled: pulled.opened, state };
}

describe('handler.fetch() and the host request.signal', () => {
  describe('when the client leaves while the application is still running', () => {
    it('aborts context.signal at once, finishes once after the application returned, with status 0 and bytesSent 0', async () => {
      const { bus, finished, finishedCount } = finishedRecorder();
      const { host, request } = hostRequest('/slow');
      const started = gate<RequestContext>();
      const answer = gate();
      const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
      const handler = createHandler(
        async (_request, context) => {
          started.open(context);
          await answer.opened;
          return new Response(source.stream, { status: 201 });
        },
        { signals: bus },
      );
      const responded = handler.fetch(request);
      const context = await started.opened;
      assert.equal(context.signal.aborted, false);

      host.abort();
      assert.equal(context.signal.aborted, true, 'aborted in the same turn as the host signal');
      await nextTurn();
      assert.equal(finished.length, 0, 'not while the application still runs');

      answer.open();
      await responded;
      await finishedCount(1);
      assert.equal(source.cancelled, true, 'the late body was cancelled at once, before request_finished');
      assert.equal(source.pulls, 0);
      assert.equal(finished[0]?.outcome, 'aborted');
      assert.equal(finished[0]?.status, 0);
      assert.equal(finished[0]?.bytesSent, 0);
      assert.equal(handler.inFlight, 0);
      await nextTurn();
      assert.equal(finished.length, 1);
    });

    it('treats a signal that was aborted before the handler ran as a client already gone', async () => {
      const { bus, finished, finishedCount } = finishedRecorder();
      const { host, request } = hostRequest();
      host.abort();
      let sawAborted: boolean | undefined;
      const handler = createHandler(
        async (_request, context) => {
          await nextTurn();
          sawAborted = context.signal.aborted;
          return new Response('too late');
        },
        { signals: bus },
      );
      await handler.fetch(request);
      await finishedCount(1);
      assert.equal(sawAborted, true);
      assert.equal(finished[0]?.outcome, 'aborted');
      assert.equal(finished[0]?.status, 0);
      assert.equal(finished[0]?.bytesSent, 0);
    });
  });

  describe('when the client leaves midway through the body', () => {
    it('reports the bytes the host took, and cancels the source (an async generator runs its finally)', async () => {
      const { bus, finished, finishedCount } = finishedRecorder();
      const { host, request } = hostRequest('/stream');
      const source = generatorStream({ delayMs: 2 });
      let finallyBeforeFinish: boolean | undefined;
      bus.connect('request_finished', () => {
        finallyBeforeFinish = source.finallyRan;
      });
      const handler = createHandler(() => new Response(source.stream), { signals: bus });
      const response = await handler.fetch(request);
      const reader = response.body!.getReader();
      let taken = 0;
      for (let i = 0; i < 3; i++) {
        const { value } = await reader.read();
        taken += value!.byteLength;
      }

      host.abort();
      await finishedCount(1);
      assert.equal(finished[0]?.outcome, 'aborted');
      assert.equal(finished[0]?.status, 200);
      assert.equal(finished[0]?.bytesSent, taken);
      assert.equal(finallyBeforeFinish, true);
      // The host stopped reading on its own: its body ends cleanly (Deno logs an error in a body
      // it holds, for a response nobody reads any more).
      assert.equal((await reader.read()).done, true);
      await nextTurn();
      assert.equal(finished.length, 1);
    });

    it('counts a chunk only once the host took it, not one still being read from the source', async () => {
      const { bus, finished, finishedCount } = finishedRecorder();
      const { host, request } = hostRequest('/stream');
      let sent = 0;
      const late = gate();
      const source = new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            if (sent === 1) await late.opened;
            controller.enqueue(encoder.encode(`chunk ${sent++}`));
          },
        },
        { highWaterMark: 0 },
      );
      const handler = createHandler(() => new Response(source), { signals: bus });
      const response = await handler.fetch(request);
      const reader = response.body!.getReader();
      const first = await reader.read();
      const second = reader.read();
      await nextTurn();
      host.abort();
      late.open();
      assert.equal((await second).done, true, 'the chunk read from the source after the abort is dropped');
      await finishedCount(1);
      assert.equal(finished[0]?.outcome, 'aborted');
      assert.equal(finished[0]?.bytesSent, first.value!.byteLength);
    });
  });

  describe('when the host aborts after the response was sent in full', () => {
    it('ignores the abort (Deno aborts request.signal after every response) and keeps context.signal', async () => {
      const { bus, finished, finishedCount } = finishedRecorder();
      let context: RequestContext | undefined;
      const handler = createHandler(
        (_request, ctx) => {
          context = ctx;
          return new Response('hello');
        },
        { signals: bus },
      );
      const { host, request } = hostRequest('/plain');
      const response = await handler.fetch(request);
      assert.equal(await response.text(), 'hello');
      await finishedCount(1);

      host.abort();
      await nextTurn();
      assert.equal(finished.length, 1);
      assert.equal(finished[0]?.outcome, 'completed');
      assert.equal(finished[0]?.bytesSent, 5);
      assert.equal(context?.signal.aborted, false);
    });

    it('ignores it for a streamed body read to its end, and for a response without a body', async () => {
      const { bus, finished, finishedCount } = finishedRecorder();
      const handler = createHandler(
        (request) =>
          request.url.endsWith('/empty')
            ? new Response(null, { status: 204 })
            : new Response(recordingStream({ chunks: 2 }).stream),
        { signals: bus },
      );
      const streamed = hostRequest('/stream');
      assert.equal(await (await handler.fetch(streamed.request)).text(), 'chunk 0;chunk 1;');
      const empty = hostRequest('/empty');
      await handler.fetch(empty.request);
      await finishedCount(2);
      streamed.host.abort();
      empty.host.abort();
      await nextTurn();
      assert.deepEqual(
        finished.map(({ outcome, status, bytesSent }) => [outcome, status, bytesSent]),
        [
          ['completed', 200, 16],
          ['completed', 204, 0],
        ],
      );
    });

    it('counts as completed when the host stopped at the declared content-length before the source said it was done', async () => {
      // Deno reads a body only up to its content-length, then aborts request.signal and cancels
      // the body, while the source may not have closed yet.
      const { bus, finished, finishedCount } = finishedRecorder();
      const { host, request } = hostRequest('/sized');
      const source = generatorStream({ chunks: 2, delayMs: 1 });
      const handler = createHandler(
        () => new Response(source.stream, { headers: { 'content-length': '16' } }),
        { signals: bus },
      );
      const response = await handler.fetch(request);
      const reader = response.body!.getReader();
      let taken = 0;
      while (taken < 16) taken += (await reader.read()).value!.byteLength;
      host.abort();
      await reader.cancel('resource closed').catch(() => {});
      await finishedCount(1);
      assert.equal(finished[0]?.outcome, 'completed');
      assert.equal(finished[0]?.bytesSent, 16);
      assert.equal(source.finallyRan, true);
    });

    it('but as aborted when it stopped short of the declared content-length', async () => {
      const { bus, finished, finishedCount } = finishedRecorder();
      const { host, request } = hostRequest('/sized');
      const handler = createHandler(
        () => new Response(generatorStream({ chunks: 2 }).stream, { headers: { 'content-length': '16' } }),
        { signals: bus },
      );
      const reader = (await handler.fetch(request)).body!.getReader();
      await reader.read();
      host.abort();
      await finishedCount(1);
      assert.equal(finished[0]?.outcome, 'aborted');
      assert.equal(finished[0]?.bytesSent, 8);
    });

    it('counts a HEAD request whose body the host dropped as completed', async () => {
      const { bus, finished, finishedCount } = finishedRecorder();
      const { host, request } = hostRequest('/', { method: 'HEAD' });
      const handler = createHandler(() => new Response(generatorStream().stream), { signals: bus });
      const response = await handler.fetch(request);
      await response.body!.cancel();
      host.abort();
      await finishedCount(1);
      assert.equal(finished[0]?.outcome, 'completed');
      assert.equal(finished[0]?.status, 200);
      assert.equal(finished[0]?.bytesSent, 0);
    });
  });

  describe('when the host cancels the body while a read of it is still pending', () => {
    it('reports aborted, not completed (the pending read comes back done)', async () => {
      const { bus, finished, finishedCount } = finishedRecorder();
      const { request } = hostRequest('/stream');
      const source = stalledSource();
      const handler = createHandler(() => new Response(source.stream), { signals: bus });
      const reader = (await handler.fetch(request)).body!.getReader();
      const pending = reader.read();
      await source.pulled;
      await reader.cancel('client left');
      assert.equal((await pending).done, true);
      await finishedCount(1);
      assert.equal(source.state.cancelled, true);
      assert.equal(finished[0]?.outcome, 'aborted');
      assert.equal(finished[0]?.bytesSent, 0);
    });

    it('trackBody() calls onClose with cancelled, once', async () => {
      const source = stalledSource();
      const reasons: BodyCloseReason[] = [];
      const response = trackBody(new Response(source.stream), (reason) => reasons.push(reason));
      const reader = response.body!.getReader();
      const pending = reader.read();
      await source.pulled;
      await reader.cancel('client left');
      await pending;
      await nextTurn();
      assert.deepEqual(reasons, [{ outcome: 'cancelled', reason: 'client left' }]);
    });
  });

  describe('listening to the host signal', () => {
    it('adds one listener per request and removes it when the request is over', async () => {
      const { bus, finishedCount } = finishedRecorder();
      const answer = gate();
      const handler = createHandler(
        async () => {
          await answer.opened;
          return new Response('ok');
        },
        { signals: bus },
      );
      const { request } = hostRequest();
      const responded = handler.fetch(request);
      await nextTurn();
      assert.equal(getEventListeners(request.signal, 'abort').length, 1);
      answer.open();
      await (await responded).text();
      await finishedCount(1);
      assert.equal(getEventListeners(request.signal, 'abort').length, 0);
    });

    it('leaves a long-lived signal without listeners after many requests', async () => {
      const { bus, finishedCount } = finishedRecorder();
      const handler = createHandler(() => new Response(recordingStream({ chunks: 1 }).stream), {
        signals: bus,
      });
      const shared = new AbortController();
      const request = new Request('http://127.0.0.1/', { signal: shared.signal });
      for (let i = 0; i < 20; i++) await (await handler.fetch(request)).text();
      await finishedCount(20);
      assert.equal(getEventListeners(request.signal, 'abort').length, 0);
    });

    it('is not done for a handler that joins a tsgi scope (the Node adapter says when the client left)', async () => {
      const { bus } = finishedRecorder();
      const handler = createHandler(() => new Response('joined'), { signals: bus });
      const scope = new RequestScope();
      const { host, request } = hostRequest();
      const response = await handler(request, scope.context);
      assert.equal(getEventListeners(request.signal, 'abort').length, 0);
      host.abort();
      assert.equal(scope.isClosing, false, 'the owner of the scope decides, not the request signal');
      await response.text();
      await scope.close('completed');
    });
  });
});
