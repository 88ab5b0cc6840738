import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestScope, STATIC_BODY } from '../src/host.ts';
import {
  type Application,
  compose,
  createHandler,
  defineMiddleware,
  InvalidResponseError,
  type Middleware,
  SignalBus,
} from '../src/index.ts';
import { passesThrough } from './fixtures/middleware.ts';
import { readText, recordingStream } from './fixtures/streams.ts';

const request = (path = '/') => new Request(`http://127.0.0.1${path}`);

/** `response` with tsgi's mark of a fixed-data body, as tsgi's FastResponse carries it. */
function fixed(response: Response): Response {
  Object.defineProperty(response, STATIC_BODY, { value: true });
  return response;
}

function tracer(name: string, log: string[]): Middleware {
  return (next) =>
    async function tracerLayer(req, context) {
      log.push(`${name} in`);
      const response = await next(req, context);
      log.push(`${name} out`);
      return response;
    };
}

describe('compose()', () => {
  it('runs the first middleware listed outermost (onion order)', async () => {
    const log: string[] = [];
    const app: Application = () => {
      log.push('app');
      return new Response('ok');
    };
    const composed = compose(tracer('a', log), tracer('b', log), tracer('c', log))(app);
    await composed(request(), new RequestScope().context);
    assert.deepEqual(log, ['a in', 'b in', 'c in', 'app', 'c out', 'b out', 'a out']);
  });

  it('is a(b(c(app))) outside a scope too', async () => {
    const log: string[] = [];
    const composed = compose(tracer('a', log), tracer('b', log))(() => new Response('ok'));
    const response = await composed(request(), undefined as never);
    assert.equal(await response.text(), 'ok');
    assert.deepEqual(log, ['a in', 'b in', 'b out', 'a out']);
  });

  it('with no middleware returns the application behind one boundary', async () => {
    const response = await compose()(() => new Response('bare'))(request(), new RequestScope().context);
    assert.equal(await response.text(), 'bare');
  });

  describe('when given bad input', () => {
    it('names the position of an entry that is not a function', () => {
      assert.throws(
        () => compose(passesThrough(), undefined as unknown as Middleware),
        (error: Error) =>
          error instanceof TypeError &&
          /position 1 is undefined/.test(error.message) &&
          /factory/.test(error.message),
      );
    });

    it('says what a middleware is when one does not return an application', () => {
      const broken = (() => 'nope') as unknown as Middleware;
      assert.throws(() => compose(broken)(() => new Response()), /returned string instead of an application/);
    });

    it('rejects an application that is not a function', () => {
      assert.throws(() => compose()(42 as unknown as Application), /application must be a function/);
    });
  });

  describe('at request time', () => {
    it('explains a middleware that forgot to return next(request)', async () => {
      const forgetful: Middleware = (next) =>
        async function forgetfulLayer(req, context) {
          await next(req, context);
          return undefined as unknown as Response;
        };
      const composed = compose(forgetful)(() => new Response('ok'));
      await assert.rejects(
        Promise.resolve(composed(request(), new RequestScope().context)),
        (error: Error) =>
          error instanceof InvalidResponseError &&
          /middleware forgetfulLayer returned undefined/.test(error.message) &&
          /did you forget to return next\(request\)\?/.test(error.message),
      );
    });

    it('explains a factory listed without being called', async () => {
      const factory = (_options?: unknown): Middleware => passesThrough();
      const composed = compose(factory as unknown as Middleware)(() => new Response('ok'));
      await assert.rejects(
        async () => composed(request(), new RequestScope().context),
        /returned function instead of a Response — did you list a middleware factory without calling it/,
      );
    });

    it('explains an application without a return', async () => {
      const composed = compose()((() => undefined) as unknown as Application);
      assert.throws(
        () => composed(request(), new RequestScope().context),
        /the application returned undefined instead of a Response — did you forget a return statement\?/,
      );
    });
  });

  describe('cost', () => {
    it('hands a response tsgi marks as fixed data through ten pass-through layers as the very same object', async () => {
      const original = fixed(new Response('Hello World'));
      const layers = Array.from({ length: 10 }, passesThrough);
      const composed = compose(...layers)(async () => original);
      const response = await composed(request(), new RequestScope().context);
      assert.equal(response, original);
    });

    it('hands on as the very same object a response the host’s fixedBody oracle calls fixed data', async () => {
      const original = new Response('Hello World');
      const asked: Response[] = [];
      const fixedBody = (response: Response) => {
        asked.push(response);
        return response === original;
      };
      const composed = compose(...Array.from({ length: 10 }, passesThrough))(async () => original);
      const response = await composed(request(), new RequestScope({ fixedBody }).context);
      assert.equal(response, original);
      assert.deepEqual(asked, [original], 'asked once, at the first boundary');
    });

    it('without an oracle, gives a runtime’s response one proxy: its body might be a stream', async () => {
      const original = new Response('Hello World');
      const composed = compose(...Array.from({ length: 10 }, passesThrough))(async () => original);
      const response = await composed(request(), new RequestScope().context);
      assert.notEqual(response, original);
      assert.equal(await response.text(), 'Hello World');
    });

    it('never asks the oracle about a response tsgi marked, either way', async () => {
      const fixedBody = () => assert.fail('the oracle was asked');
      for (const mark of [true, false]) {
        const original = new Response(recordingStream({ chunks: 1 }).stream);
        Object.defineProperty(original, STATIC_BODY, { value: mark });
        const composed = compose(passesThrough())(async () => original);
        const response = await composed(request(), new RequestScope({ fixedBody }).context);
        assert.equal(response === original, mark);
        await response.body?.cancel();
      }
    });

    it('gives a new stream body one proxy, however many pass-through layers it crosses', async () => {
      const constructed = countConstructions();
      try {
        const layers = Array.from({ length: 10 }, passesThrough);
        const source = recordingStream({ chunks: 1 });
        const composed = compose(...layers)(async () => new Response(source.stream));
        constructed.reset();
        const response = await composed(request(), new RequestScope().context);
        // the application's own Response, plus one proxy stream and the Response around it
        assert.deepEqual([constructed.responses, constructed.streams], [2, 1]);
        assert.equal(await readText(response.body), 'chunk 0;');
      } finally {
        constructed.restore();
      }
    });

    it('adds no stream and no Response of its own around a string body', async () => {
      const constructed = countConstructions();
      try {
        const layers = Array.from({ length: 10 }, passesThrough);
        const handler = createHandler(() => fixed(new Response('Hello World')), {
          middleware: layers,
          signals: new SignalBus(),
        });
        const scope = new RequestScope();
        constructed.reset();
        const response = await handler(request(), scope.context);
        // only the application's own Response (and the stream undici itself makes for its body)
        assert.deepEqual([constructed.responses, constructed.streams], [1, 1]);
        assert.equal(await response.text(), 'Hello World');
      } finally {
        constructed.restore();
      }
    });
  });
});

describe('defineMiddleware()', () => {
  it('gives next() that runs the wrapped application with the same request by default', async () => {
    const seen: string[] = [];
    const middleware = defineMiddleware(async (_request, _context, next) => next());
    const app = middleware((req) => {
      seen.push(new URL(req.url).pathname);
      return new Response('ok');
    });
    await app(request('/same'), new RequestScope().context);
    assert.deepEqual(seen, ['/same']);
  });

  it('lets next(request) pass another request on', async () => {
    const middleware = defineMiddleware((req, _context, next) =>
      next(new Request(new URL('/other', req.url))),
    );
    const app = middleware((req) => new Response(new URL(req.url).pathname));
    const response = await app(request('/first'), new RequestScope().context);
    assert.equal(await response.text(), '/other');
  });

  it('allows not calling next (short-circuit)', async () => {
    let called = false;
    const middleware = defineMiddleware(() => new Response('denied', { status: 403 }));
    const app = middleware(() => {
      called = true;
      return new Response('ok');
    });
    const response = await app(request(), new RequestScope().context);
    assert.equal(response.status, 403);
    assert.equal(called, false);
  });

  it('allows calling next several times (retry)', async () => {
    let calls = 0;
    const middleware = defineMiddleware(async (_request, _context, next) => {
      const first = await next();
      if (first.status === 503) return next();
      return first;
    });
    const app = middleware(() => new Response(null, { status: ++calls === 1 ? 503 : 200 }));
    const response = await app(request(), new RequestScope().context);
    assert.equal(response.status, 200);
    assert.equal(calls, 2);
  });

  it('turns a synchronous throw in the inner application into a rejected next()', async () => {
    const middleware = defineMiddleware(async (_request, _context, next) => {
      const result = next();
      assert.ok(result instanceof Promise);
      await assert.rejects(result, /inner broke/);
      return new Response('handled');
    });
    const app = middleware(() => {
      throw new Error('inner broke');
    });
    const response = await app(request(), new RequestScope().context);
    assert.equal(await response.text(), 'handled');
  });

  it('names the layer after the function it was given', () => {
    const middleware = defineMiddleware(function timing(_request, _context, next) {
      return next();
    });
    assert.equal(middleware.name, 'timing');
    assert.equal(middleware(() => new Response()).name, 'timing');
  });

  it('rejects a handle that is not a function', () => {
    assert.throws(() => defineMiddleware(null as never), /handle must be a function/);
  });
});

/** Counts `new Response` and `new ReadableStream` made through the globals while installed. */
function countConstructions() {
  const OriginalResponse = globalThis.Response;
  const OriginalStream = globalThis.ReadableStream;
  const counts = {
    responses: 0,
    streams: 0,
    reset() {
      counts.responses = 0;
      counts.streams = 0;
    },
    restore() {
      globalThis.Response = OriginalResponse;
      globalThis.ReadableStream = OriginalStream;
    },
  };
  globalThis.Response = class extends OriginalResponse {
    constructor(...args: ConstructorParameters<typeof Response>) {
      super(...args);
      counts.responses++;
    }
  } as typeof Response;
  globalThis.ReadableStream = class<R> extends OriginalStream<R> {
    constructor(...args: unknown[]) {
      super(...(args as [UnderlyingDefaultSource<R>]));
      counts.streams++;
    }
  } as typeof ReadableStream;
  return counts;
}
