/**
 * In-process overhead of the tsgi pipeline: what the handler, the signals and the request scope cost
 * per request, with no sockets in the way.
 *
 * Each case drives requests the way the Node adapter does (a scope per request, the app called with
 * its context, the final body read through the scope's own handle, the scope closed) and reports CPU
 * microseconds per request. Cases:
 * - `bare app`: the application called directly, its body read — the floor;
 * - `handler, 0 layers` / `handler, 10 layers`: createHandler with pass-through middleware and a
 *   receiver on both signals;
 * - `handler, 10 layers, stream body`: the same with a new stream body (one proxy per request);
 * - `naive, 10 layers`: each layer copies the response into a new stream and Response — the design the
 *   core avoids, for scale;
 * - `handler, logging()`: the access log writing every line (to /dev/null), to show that buffered
 *   writing keeps it off the request path; `handler, gzip() (below threshold)`: what gzip's decision
 *   costs a response it leaves alone.
 *
 * Run: `npm run bench:overhead` (about 10 s). Compare figures from the same run only.
 */
import { createWriteStream } from 'node:fs';
import { gzip, logging } from '../middleware/index.ts';
import { isStaticBody } from '../src/body.ts';
import { RequestScope } from '../src/host.ts';
import { type Application, createHandler, type Middleware, SignalBus } from '../src/index.ts';
import { undiciStaticBody } from '../src/node/internals.ts';

const ROUNDS = 3;
const REQUESTS = 20_000;

const passThrough: Middleware = (next) => (request, context) => next(request, context);
const naiveCopy: Middleware = (next) => async (request, context) => {
  const response = await next(request, context);
  return new Response(response.body?.pipeThrough(new TransformStream()) ?? null, response);
};

const hello: Application = () => new Response('Hello World');
const streamed: Application = () =>
  new Response(
    new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('Hello World'));
        controller.close();
      },
    }),
  );

function site(app: Application, layers: Middleware[]): Application {
  const bus = new SignalBus();
  const seen = { started: 0, finished: 0 };
  bus.connect('request_started', () => {
    seen.started++;
  });
  bus.connect('request_finished', () => {
    seen.finished++;
  });
  return createHandler(app, { middleware: layers, signals: bus });
}

async function drive(app: Application, scoped: boolean): Promise<void> {
  const request = new Request('http://127.0.0.1/');
  if (!scoped) {
    const response = await app(request, new RequestScope({ fixedBody: undiciStaticBody }).context);
    await response.arrayBuffer();
    return;
  }
  const scope = new RequestScope({ fixedBody: undiciStaticBody });
  const response = await app(request, scope.context);
  scope.status = response.status;
  if (isStaticBody(response)) {
    // fixed data holds nothing to release: a server writes it straight out
    scope.bytesSent += (await response.arrayBuffer()).byteLength;
  } else if (response.body !== null) {
    const reader = scope.own(response.body, () => {}).getReader();
    while (!(await reader.read()).done) {}
  }
  await scope.close('completed');
}

async function measure(app: Application, scoped: boolean): Promise<number> {
  for (let i = 0; i < 2_000; i++) await drive(app, scoped);
  const before = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) await drive(app, scoped);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / REQUESTS;
}

const cases: [string, Application, boolean][] = [
  ['bare app', hello, false],
  ['handler, 0 layers', site(hello, []), true],
  [
    'handler, 10 layers',
    site(
      hello,
      Array.from({ length: 10 }, () => passThrough),
    ),
    true,
  ],
  [
    'handler, 10 layers, stream body',
    site(
      streamed,
      Array.from({ length: 10 }, () => passThrough),
    ),
    true,
  ],
  [
    'naive, 10 layers',
    site(
      hello,
      Array.from({ length: 10 }, () => naiveCopy),
    ),
    true,
  ],
  // the built-in middleware on the request path: logging writes real lines (to /dev/null) in
  // batches; gzip leaves this 11-byte body alone (below its threshold), so this is its decision cost
  ['handler, logging()', site(hello, [logging({ stream: createWriteStream('/dev/null') })]), true],
  ['handler, gzip() (below threshold)', site(hello, [gzip()]), true],
];

const results = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, app, scoped] of cases) {
    const list = results.get(name) ?? [];
    list.push(await measure(app, scoped));
    results.set(name, list);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const floor = median(results.get('bare app')!);
console.log(`CPU µs per request, median of ${ROUNDS} interleaved rounds of ${REQUESTS} requests`);
for (const [name, values] of results) {
  const us = median(values);
  console.log(`${name.padEnd(34)} ${us.toFixed(2).padStart(8)} µs  ${(us / floor).toFixed(2)} × bare`);
}
