import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestScope } from '../src/host.ts';
import {
  type Application,
  createHandler,
  type Handler,
  isHandler,
  type Middleware,
  ReceiverError,
  type RequestFinishedEvent,
  ScopeClosedError,
  SignalBus,
} from '../src/index.ts';
import { exchange } from './fixtures/host.ts';
import { readText, recordingStream } from './fixtures/streams.ts';

const request = (path = '/', init?: RequestInit) => new Request(`http://127.0.0.1${path}`, init);

/** A bus that records every event, and reports receiver errors into a list. */
function recordingBus() {
  const events: { name: string; payload: unknown }[] = [];
  const reported: unknown[] = [];
  const bus = new SignalBus({ onError: (error) => reported.push(error) });
  bus.connect('request_started', (payload) => {
    events.push({ name: 'request_started', payload });
  });
  bus.connect('got_request_exception', (payload) => {
    events.push({ name: 'got_request_exception', payload });
  });
  bus.connect('request_finished', (payload) => {
    events.push({ name: 'request_finished', payload });
  });
  const named = (name: string) => events.filter((event) => event.name === name);
  const finished = () => named('request_finished').map((event) => event.payload as RequestFinishedEvent);
  /** Resolves once `count` request_finished events have arrived (waits for the event, not a timer). */
  const finishedCount = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (finished().length < count) return;
        bus.off('request_finished', check);
        resolve();
      };
      bus.on('request_finished', check);
      check();
    });
  return { bus, events, reported, named, finished, finishedCount };
}

describe('createHandler()', () => {
  it('emits request_started before any middleware or application code runs', async () => {
    const { bus, events } = recordingBus();
    const order: string[] = [];
    bus.connect('request_started', () => {
      order.push('request_started');
    });
    const middleware: Middleware = (next) => (req, context) => {
      order.push('middleware');
      return next(req, context);
    };
    const handler = createHandler(
      () => {
        order.push('application');
        return new Response('ok');
      },
      { middleware: [middleware], signals: bus },
    );
    await exchange(handler, request());
    assert.deepEqual(order, ['request_started', 'middleware', 'application']);
    assert.deepEqual(
      events.map((event) => event.name),
      ['request_started', 'request_finished'],
    );
  });

  it('names itself as the sender and passes the request and context', async () => {
    const { bus, events } = recordingBus();
    const handler = createHandler(() => new Response('ok'), { signals: bus });
    const req = request('/who');
    await exchange(handler, req);
    for (const { payload } of events) {
      const { sender, request: seen, context } = payload as RequestFinishedEvent;
      assert.equal(sender, handler);
      assert.equal(seen, req);
      assert.equal(typeof context.id, 'string');
    }
  });

  it('reports the status, bytes, duration and outcome in request_finished', async () => {
    const { bus, finished } = recordingBus();
    const handler = createHandler(() => new Response('hello', { status: 201 }), { signals: bus });
    await exchange(handler, request());
    const [event] = finished();
    assert.equal(event?.status, 201);
    assert.equal(event?.bytesSent, 5);
    assert.equal(event?.outcome, 'completed');
    assert.ok((event?.durationMs ?? -1) >= 0);
  });

  describe('when the application throws', () => {
    for (const [kind, app] of [
      [
        'synchronously',
        () => {
          throw new Error('secret detail');
        },
      ],
      [
        'asynchronously',
        async () => {
          await Promise.resolve();
          throw new Error('secret detail');
        },
      ],
      [
        'a value that is not an Error',
        () => {
          throw 'a string';
        },
      ],
    ] as [string, Application][]) {
      it(`answers a plain 500 without detail when it throws ${kind}`, async () => {
        const { bus, named, finished } = recordingBus();
        const handler = createHandler(app, { signals: bus });
        const result = await exchange(handler, request());
        assert.equal(result.status, 500);
        assert.equal(result.text, 'Internal Server Error\n');
        assert.equal(named('got_request_exception').length, 1);
        assert.equal(finished().length, 1);
        assert.equal(finished()[0]?.status, 500);
        assert.equal(finished()[0]?.outcome, 'completed');
        assert.ok(finished()[0]?.error !== undefined);
      });
    }

    it('shows the exception and its stack when debug is on', async () => {
      const handler = createHandler(
        function failingView() {
          throw new Error('secret detail');
        },
        { debug: true, signals: new SignalBus() },
      );
      const result = await exchange(handler, request());
      assert.equal(result.status, 500);
      assert.match(result.text, /Error: secret detail/);
      assert.match(result.text, /failingView/);
    });

    it('does not report the scope’s own cancel reason, let through after the client left, as a fault', async () => {
      const reported: { error: unknown; where: string }[] = [];
      const bus = new SignalBus({ onError: (error, where) => reported.push({ error, where }) });
      const exceptions: unknown[] = [];
      bus.connect('got_request_exception', ({ error }) => {
        exceptions.push(error);
      });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const handler = createHandler(
        async () => {
          await gate;
          // What a layer reading an inner body gets once the scope cancelled it.
          throw new ScopeClosedError('aborted');
        },
        { signals: bus },
      );
      const scope = new RequestScope();
      const answer = handler(request(), scope.context);
      scope.end('aborted'); // the client left
      release();
      await answer;
      await scope.finished;
      assert.equal(exceptions.length, 1, 'got_request_exception says what happened');
      assert.deepEqual(
        reported.filter((report) => report.where === 'application'),
        [],
        'nothing for the operator: it is the disconnect itself',
      );
    });

    it('passes the error to got_request_exception', async () => {
      const { bus, named } = recordingBus();
      const error = new Error('boom');
      const handler = createHandler(
        () => {
          throw error;
        },
        { signals: bus },
      );
      await exchange(handler, request());
      assert.equal((named('got_request_exception')[0]!.payload as { error: unknown }).error, error);
    });
  });

  describe('when a receiver throws or rejects', () => {
    it('still answers, still runs the other receivers, and reports each failure', async () => {
      const { bus, reported, finished } = recordingBus();
      for (const name of ['request_started', 'request_finished', 'got_request_exception'] as const) {
        bus.connect(name, () => {
          throw new Error(`${name} sync`);
        });
        bus.connect(name, async () => {
          throw new Error(`${name} async`);
        });
      }
      const handler = createHandler(
        (req) => {
          if (req.url.endsWith('/fail')) throw new Error('view failed');
          return new Response('fine');
        },
        { signals: bus },
      );
      const ok = await exchange(handler, request('/'));
      const failed = await exchange(handler, request('/fail'));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(ok.text, 'fine');
      assert.equal(failed.status, 500);
      assert.equal(finished().length, 2);
      // Ten receiver failures, and the view's exception itself (it became the 500).
      assert.equal(reported.length, 11);
      assert.equal(reported.filter((error) => error instanceof ReceiverError).length, 10);
      assert.match(String(reported.find((error) => !(error instanceof ReceiverError))), /view failed/);
      assert.equal(handler.inFlight, 0);
    });
  });

  describe('inFlight', () => {
    it('counts open requests and returns to 0', async () => {
      const bus = new SignalBus();
      let release = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const handler = createHandler(
        async () => {
          await gate;
          return new Response('ok');
        },
        { signals: bus },
      );
      let seenInReceiver = -1;
      bus.connect('request_finished', () => {
        seenInReceiver = handler.inFlight;
      });
      const first = exchange(handler, request());
      const second = exchange(handler, request());
      assert.equal(handler.inFlight, 2);
      release();
      await Promise.all([first, second]);
      assert.equal(handler.inFlight, 0);
      assert.equal(seenInReceiver, 0);
    });
  });

  describe('handler.fetch() and foreign hosts (a scope of its own)', () => {
    it('finishes with completed once the body was read to the end', async () => {
      const { bus, finished, finishedCount } = recordingBus();
      const { fetch } = createHandler(() => new Response('hello'), { signals: bus });
      const response = await fetch(request());
      assert.equal(finished().length, 0, 'not before the body was read');
      assert.equal(await response.text(), 'hello');
      await finishedCount(1);
      assert.equal(finished().length, 1);
      assert.equal(finished()[0]?.outcome, 'completed');
      assert.equal(finished()[0]?.bytesSent, 5);
      assert.equal(finished()[0]?.status, 200);
    });

    it('finishes with aborted when the host cancels the body, and cancels the source', async () => {
      const { bus, finished, finishedCount } = recordingBus();
      const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
      const handler = createHandler(() => new Response(source.stream), { signals: bus });
      const response = await handler.fetch(request());
      const reader = response.body!.getReader();
      await reader.read();
      await reader.cancel('host gone');
      await finishedCount(1);
      assert.equal(source.cancelled, true);
      assert.equal(finished()[0]?.outcome, 'aborted');
      assert.equal(handler.inFlight, 0);
    });

    it('finishes with errored when the body fails, carrying the error', async () => {
      const { bus, finished, finishedCount } = recordingBus();
      const handler = createHandler(() => new Response(recordingStream({ failAt: 1 }).stream), {
        signals: bus,
      });
      const response = await handler.fetch(request());
      await assert.rejects(response.text(), /failed at chunk 1/);
      await finishedCount(1);
      assert.equal(finished()[0]?.outcome, 'errored');
      assert.match((finished()[0]!.error as Error).message, /failed at chunk 1/);
    });

    it('finishes at once for a response without a body', async () => {
      const { bus, finished, finishedCount } = recordingBus();
      const handler = createHandler(() => new Response(null, { status: 204 }), { signals: bus });
      const response = await handler.fetch(request());
      assert.equal(response.status, 204);
      await finishedCount(1);
      assert.equal(finished()[0]?.status, 204);
    });

    it('works when a foreign wrapper passes only the request, or a context of its own', async () => {
      const { bus, finished, finishedCount } = recordingBus();
      const handler = createHandler((_req, context) => new Response(typeof context.onClose), {
        signals: bus,
      });
      const onlyRequest = await (handler as unknown as (req: Request) => Promise<Response>)(request());
      const foreign = await handler(request(), { env: 'cloudflare-like' } as never);
      assert.equal(await onlyRequest.text(), 'function');
      assert.equal(await foreign.text(), 'function');
      await finishedCount(2);
      assert.equal(finished().length, 2);
    });

    it('keeps status text and headers', async () => {
      const handler = createHandler(
        () => new Response('x', { status: 299, statusText: 'Odd', headers: { 'x-a': '1' } }),
        { signals: new SignalBus() },
      );
      const response = await handler.fetch(request());
      assert.equal(response.statusText, 'Odd');
      assert.equal(response.headers.get('x-a'), '1');
      await response.text();
    });
  });

  describe('inside a scope someone else owns', () => {
    it('joins it and finishes only when the owner closes it', async () => {
      const { bus, finished } = recordingBus();
      const handler = createHandler(() => new Response('joined'), { signals: bus });
      const scope = new RequestScope();
      const response = await handler(request(), scope.context);
      assert.equal(await readText(response.body), 'joined');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(finished().length, 0, 'a joined handler never closes the scope itself');
      await scope.close('completed');
      assert.equal(finished().length, 1);
    });

    it('lets handlers nest on one bus: only the outermost emits, once, after the inner body closed', async () => {
      const { bus, events, finished } = recordingBus();
      const source = recordingStream({ chunks: 2 });
      let releasedAtFinish = false;
      bus.connect('request_finished', () => {
        releasedAtFinish = source.completed;
      });
      const inner = createHandler(() => new Response(source.stream), { signals: bus });
      const outer = createHandler((req, context) => inner(req, context), { signals: bus });
      const result = await exchange(outer, request());
      assert.equal(result.text, 'chunk 0;chunk 1;');
      assert.deepEqual(
        events.map((event) => event.name),
        ['request_started', 'request_finished'],
      );
      assert.equal(finished()[0]?.sender, outer);
      assert.equal(releasedAtFinish, true);
      assert.equal(inner.inFlight + outer.inFlight, 0);
    });

    it('lets handlers nest on different buses: each bus hears the request once, the inner first', async () => {
      const site = recordingBus();
      const blog = recordingBus();
      const order: string[] = [];
      site.bus.connect('request_finished', () => {
        order.push('site');
      });
      blog.bus.connect('request_finished', () => {
        order.push('blog');
      });
      const inner = createHandler(() => new Response('post'), { signals: blog.bus });
      const outer = createHandler((req, context) => inner(req, context), { signals: site.bus });
      await exchange(outer, request());
      assert.equal(site.finished().length, 1);
      assert.equal(blog.finished().length, 1);
      assert.deepEqual(order, ['blog', 'site']);
    });

    it('reports an exception from the inner handler on its own bus, once', async () => {
      const { bus, named } = recordingBus();
      const inner = createHandler(
        () => {
          throw new Error('inner view');
        },
        { signals: bus },
      );
      const outer = createHandler((req, context) => inner(req, context), { signals: bus });
      const result = await exchange(outer, request());
      assert.equal(result.status, 500);
      assert.equal(named('got_request_exception').length, 1);
      assert.equal((named('got_request_exception')[0]!.payload as { sender: unknown }).sender, inner);
      assert.equal(named('request_finished').length, 1);
    });

    it('emits once when a site is wrapped by hand around its handler, WSGI style', async () => {
      const { bus, finished } = recordingBus();
      let application: Application = createHandler(() => new Response('site'), { signals: bus });
      const wrap: Middleware = (next) => (req, context) => next(req, context);
      application = wrap(application);
      const served = createHandler(application, { signals: bus });
      await exchange(served, request());
      assert.equal(finished().length, 1);
    });
  });

  it('lets one bus serve two sites, told apart by sender', async () => {
    const { bus, finished } = recordingBus();
    const blog = createHandler(() => new Response('blog'), { signals: bus });
    const shop = createHandler(() => new Response('shop'), { signals: bus });
    await exchange(blog, request());
    await exchange(shop, request());
    assert.deepEqual(
      finished().map((event) => event.sender),
      [blog, shop],
    );
  });

  it('is recognised by isHandler()', () => {
    assert.equal(isHandler(createHandler(() => new Response(), { signals: new SignalBus() })), true);
    assert.equal(
      isHandler(() => new Response()),
      false,
    );
  });

  describe('when given bad input', () => {
    it('says the application must be a function', () => {
      assert.throws(() => createHandler('app' as never), /app must be an application function, got string/);
    });

    it('says middleware must be an array, outermost first', () => {
      assert.throws(
        () => createHandler(() => new Response(), { middleware: (() => {}) as never }),
        /middleware must be an array, outermost first/,
      );
    });
  });
});

export type { Handler };
