/**
 * Errors reach the operator (DESIGN guarantee 8): every exception that becomes a 500, every response
 * that fails after it started, every failing receiver goes to the bus's one `onError` hook with what
 * is needed to find it (the stack, what failed, the request); by default that hook writes to stderr.
 * The page the client sees stays plain unless debug is on. Building a report never throws, whatever
 * was thrown.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type Application,
  createHandler,
  type Middleware,
  PayloadTooLargeError,
  ReceiverError,
  type RequestFinishedEvent,
  RequestTimeoutError,
  SignalBus,
} from '../src/index.ts';
import { describe as describeValue, type ErrorSource, formatError, formatReport } from '../src/report.ts';
import { deferred } from './fixtures/client.ts';
import { exchange } from './fixtures/host.ts';

const request = (path = '/', init?: RequestInit) => new Request(`http://127.0.0.1${path}`, init);

/** A bus whose hook records each report instead of printing it. */
function reportingBus() {
  const reports: { error: unknown; where: ErrorSource; request: Request | undefined }[] = [];
  const bus = new SignalBus({
    onError: (error, where, req) => {
      reports.push({ error, where, request: req });
    },
  });
  return { bus, reports };
}

/** An Error whose `stack` getter throws, as some error-wrapping libraries manage to produce. */
function errorWithBrokenStack(): Error {
  const error = new Error('the stack is broken');
  Object.defineProperty(error, 'stack', {
    get() {
      throw new Error('no stack for you');
    },
  });
  return error;
}

const nullPrototype = (): object => Object.assign(Object.create(null), { code: 'E_ODD' });

/** What an application may throw, and what the report's text must then contain. */
const thrown: [kind: string, make: () => unknown, text: RegExp][] = [
  ['an Error', () => new Error('plain failure'), /^Error: plain failure\n {4}at /],
  ['a string', () => 'a bare string', /^a bare string \(a thrown string, not an Error/],
  ['null', () => null, /^null \(a thrown null, not an Error/],
  ['a null-prototype object', nullPrototype, /^\{"code":"E_ODD"\} \(a thrown null-prototype object/],
  ['an Error whose stack getter throws', errorWithBrokenStack, /^Error: the stack is broken \(its stack/],
];

describe('error reporting', () => {
  describe('when the application throws', () => {
    for (const [kind, make, text] of thrown) {
      for (const timing of ['synchronously', 'asynchronously'] as const) {
        it(`reports ${kind} thrown ${timing} to onError as 'application', with the request, and answers a plain 500`, async () => {
          const { bus, reports } = reportingBus();
          const error = make();
          const app: Application =
            timing === 'synchronously'
              ? function failingView() {
                  throw error;
                }
              : async function failingView() {
                  await Promise.resolve();
                  throw error;
                };
          const req = request('/orders/42?token=secret');
          const result = await exchange(createHandler(app, { signals: bus }), req);
          assert.equal(result.status, 500);
          assert.equal(result.text, 'Internal Server Error\n');
          assert.equal(reports.length, 1);
          assert.equal(reports[0]!.error, error);
          assert.equal(reports[0]!.where, 'application');
          assert.equal(reports[0]!.request, req);
          if (timing === 'synchronously') assert.match(formatError(error), text);
        });
      }
    }

    it('reports an exception of a middleware the same way', async () => {
      const { bus, reports } = reportingBus();
      const broken: Middleware = () =>
        function brokenMiddleware() {
          throw new TypeError('middleware failed');
        };
      const result = await exchange(
        createHandler(() => new Response('never'), { middleware: [broken], signals: bus }),
        request('/'),
      );
      assert.equal(result.status, 500);
      assert.deepEqual(
        reports.map(({ error, where }) => [String(error), where]),
        [['TypeError: middleware failed', 'application']],
      );
    });

    it('reports once when handlers nest on one bus', async () => {
      const { bus, reports } = reportingBus();
      const inner = createHandler(
        () => {
          throw new Error('inner view');
        },
        { signals: bus },
      );
      const outer = createHandler((req, context) => inner(req, context), { signals: bus });
      assert.equal((await exchange(outer, request('/'))).status, 500);
      assert.equal(reports.length, 1);
    });

    it('still answers the 500 when the hook itself throws, and prints both errors', async () => {
      const bus = new SignalBus({
        onError: () => {
          throw new Error('the logger is down');
        },
      });
      const printed: unknown[] = [];
      const original = console.error;
      console.error = (value: unknown) => printed.push(value);
      let result: Awaited<ReturnType<typeof exchange>>;
      try {
        result = await exchange(
          createHandler(
            () => {
              throw new Error('view failed');
            },
            { signals: bus },
          ),
          request('/x'),
        );
      } finally {
        console.error = original;
      }
      assert.equal(result.status, 500);
      assert.equal(printed.length, 1);
      assert.match(
        String(printed[0]),
        /^tsgi: the application raised an exception on GET \/x; .*\nError: view failed/,
      );
      assert.match(String(printed[0]), /onError failed while reporting it:\nError: the logger is down/);
    });
  });

  describe('with debug on', () => {
    for (const [kind, make, text] of thrown) {
      it(`shows the detail of ${kind} on the 500 page`, async () => {
        const error = make();
        const handler = createHandler(
          function failingView() {
            throw error;
          },
          { debug: true, signals: reportingBus().bus },
        );
        const result = await exchange(handler, request('/'));
        assert.equal(result.status, 500);
        const [heading, detail] = result.text.split('\n\n');
        assert.equal(heading, 'Internal Server Error');
        assert.match(detail!, text);
      });
    }
  });

  describe('when a response fails after it started', () => {
    it("reports the body's error once, as 'response', and request_finished says errored", async () => {
      const { bus, reports } = reportingBus();
      const finished = deferred<RequestFinishedEvent>();
      bus.connect('request_finished', (event) => finished.resolve(event));
      const failure = new Error('the source broke');
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent) throw failure;
          sent = true;
          controller.enqueue(new TextEncoder().encode('partial'));
        },
      });
      const handler = createHandler(() => new Response(body), { signals: bus });
      const response = await handler.fetch(request('/stream'));
      await assert.rejects(response.text(), failure);
      const event = await finished.promise;
      assert.equal(event.outcome, 'errored');
      assert.deepEqual(
        reports.map(({ error, where, request: req }) => [error, where, req && new URL(req.url).pathname]),
        [[failure, 'response', '/stream']],
      );
    });

    it('reports nothing for a request that completed', async () => {
      const { bus, reports } = reportingBus();
      await exchange(
        createHandler(() => new Response('fine'), { signals: bus }),
        request('/'),
      );
      assert.deepEqual(reports, []);
    });
  });

  describe('when a receiver throws', () => {
    it('reports a thrown null-prototype object as a ReceiverError, with the request', () => {
      const { bus, reports } = reportingBus();
      const odd = nullPrototype();
      bus.connect('request_started', function brokenReceiver() {
        throw odd;
      });
      const req = request('/receiver');
      bus.emit('request_started', {
        sender: createHandler(() => new Response()),
        request: req,
        context: {} as never,
      });
      assert.equal(reports.length, 1);
      const [{ error, where, request: seen }] = reports as [(typeof reports)[0]];
      assert.ok(error instanceof ReceiverError);
      assert.equal(error.cause, odd);
      assert.match(error.message, /receiver brokenReceiver of 'request_started' failed: \{"code":"E_ODD"\}/);
      assert.equal(where, 'request_started');
      assert.equal(seen, req);
    });

    it('reports a rejecting receiver that rejects with a string', async () => {
      const { bus, reports } = reportingBus();
      bus.connect('request_started', async () => {
        throw 'rejected with a string';
      });
      await bus.dispatch('request_started', {
        sender: createHandler(() => new Response()),
        request: request('/'),
        context: {} as never,
      });
      assert.equal(reports.length, 1);
      assert.equal((reports[0]!.error as ReceiverError).cause, 'rejected with a string');
    });
  });

  describe("the status an application's report says the client got", () => {
    it('is 500 for an exception, 413 past maxBodySize, 503 for the request timeout', () => {
      const said = (error: unknown) => /the client got a (\d+)/.exec(formatReport(error, 'application'))?.[1];
      assert.equal(said(new Error('boom')), '500');
      assert.equal(said(Object.create(null)), '500');
      assert.equal(said(new PayloadTooLargeError(1024)), '413');
      assert.equal(said(new RequestTimeoutError(30_000)), '503');
      assert.equal(said({ status: 413 }), '500', 'only tsgi’s own errors change it');
    });
  });

  describe('building a report', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const hostile = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error('trap');
        },
        get() {
          throw new Error('trap');
        },
      },
    );
    const badName = new Error('x');
    Object.defineProperty(badName, 'name', {
      get() {
        throw new Error('no name');
      },
    });
    const odd: [string, unknown][] = [
      ...thrown.map(([kind, make]): [string, unknown] => [kind, make()]),
      ['undefined', undefined],
      ['a symbol', Symbol('s')],
      ['a cyclic object', cyclic],
      ['a Proxy whose traps throw', hostile],
      ['an Error whose name getter throws', badName],
      ['an Error with a cause chain', new Error('outer', { cause: new Error('middle', { cause: 'root' }) })],
    ];
    const places: ErrorSource[] = ['application', 'response', 'request_scope', 'request_started'];

    for (const [kind, value] of odd) {
      it(`never throws for ${kind}`, () => {
        for (const where of places) {
          const text = formatReport(value, where, request('/odd'));
          assert.equal(typeof text, 'string');
          assert.match(text, /^tsgi: .+\n./);
        }
        assert.equal(typeof describeValue(value), 'string');
      });
    }

    it('follows the cause chain', () => {
      const text = formatError(new Error('outer', { cause: new Error('middle', { cause: 'root' }) }));
      assert.match(text, /^Error: outer\n/);
      assert.match(text, /\nCaused by: Error: middle\n/);
      assert.match(text, /\nCaused by: root \(a thrown string/);
    });

    it('names the method and the path, never the query', () => {
      const line = formatReport(new Error('x'), 'application', request('/a/b?token=secret')).split('\n')[0];
      assert.equal(line, 'tsgi: the application raised an exception on GET /a/b; the client got a 500');
    });
  });

  describe('the default hook', () => {
    it('writes each report to stderr: what failed, on which request, then the stack; never the query, headers or body', async () => {
      const script = fileURLToPath(new URL('./fixtures/report-errors.ts', import.meta.url));
      const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.deepEqual(stdout.trimEnd().split('\n'), [
        '500 "Internal Server Error\\n"',
        '500 "Internal Server Error\\n"',
        '500 "Internal Server Error\\n"',
        '200 "fine"',
      ]);
      assert.match(
        stderr,
        /^tsgi: the application raised an exception on POST \/orders\/42; the client got a 500\nError: no such order\n {4}at failingView /m,
      );
      assert.match(
        stderr,
        /^tsgi: the application raised an exception on POST \/null-prototype; the client got a 500\n\{"code":"E_ODD"\} \(a thrown null-prototype object/m,
      );
      assert.match(
        stderr,
        /^tsgi: the application raised an exception on POST \/string; .*\na bare string \(/m,
      );
      assert.match(
        stderr,
        /^tsgi: receiver brokenReceiver of 'request_started' failed on POST \/receiver\n\{\} \(a thrown null-prototype object/m,
      );
      assert.doesNotMatch(stderr, /hunter2/);
    });
  });
});
