/**
 * The in-process benchmark: what one more middleware layer costs, in nanoseconds, for tsgi's handler
 * and for three other ways of chaining the same pass-through layers — measured with mitata.
 *
 * Chains, each calling the same application (`() => new FastResponse('Hello World')`) through N
 * pass-through layers, N in 0, 1, 5, 10, 50:
 * - `tsgi handler`: `createHandler(app, { middleware, signals })` with N
 *   `(next) => (request, context) => next(request, context)` and a receiver on both signals, called
 *   as the Node adapter calls it: a request scope per call, the handler awaited, the scope closed.
 *   Every layer has a boundary (the scope's check of what crossed it);
 * - `hand-written wrappers`: the same N closures chained by hand, no boundary, no scope — the floor
 *   a layer cannot go under;
 * - `koa-compose`: koa-compose with N `(ctx, next) => next()` and the application last;
 * - `Hono compose`: Hono's own `compose()` (hono/dist/compose.js, which Hono's package exports do not
 *   list, so it is imported by its file) with N `async (c, next) => { await next() }`, as Hono runs a
 *   route's middleware, on a minimal context object.
 *
 * Each case's figure is mitata's median (p50) time per call; rounds are interleaved (every case once
 * per round, after a warm-up round that is not kept), and the result keeps every round's figure.
 * "ns per layer" is the least-squares slope, against N, of each case's fastest round: what the fixed
 * cost of a call (the scope, the signals, the promise) cannot hide. The fastest, because on a shared
 * two-core machine a slow round is another process's doing (a neighbour on the other core slows
 * this one by up to 1.7 ×), never the code's; each round's own slope, min–max, shows how firm the
 * figure is. The target for tsgi is ≤ 20 ns per layer.
 *
 * Usage: `npm run bench:in-process -- [--quick] [--rounds 5]`. Writes benchmarks/results/in-process.json
 * (in-process-quick.json with --quick).
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import compose from 'koa-compose';
import { measure } from 'mitata';
import { RequestScope } from '../src/host.ts';
import { type Application, createHandler, FastResponse, type Middleware, SignalBus } from '../src/index.ts';
import { undiciStaticBody } from '../src/node/internals.ts';
import { describeMachine } from './machine.ts';
import { formatDuration, Progress } from './progress.ts';
import { type ChainTiming, type InProcessResult, type LayerCost, writeResult } from './results.ts';
import { slope, spread } from './stats.ts';
import { renderInProcessTable } from './table.ts';

export const LAYERS = [0, 1, 5, 10, 50] as const;

/** Hono's compose(), typed for what this file gives it. */
type HonoContext = {
  req: { routeIndex: number };
  finalized: boolean;
  res: Response | undefined;
  error?: unknown;
};
type HonoHandler = (c: HonoContext, next: () => Promise<void>) => unknown;
type HonoCompose = (middleware: [[HonoHandler]][]) => (c: HonoContext) => Promise<HonoContext>;
const { compose: honoCompose } = (await import(
  new URL('../node_modules/hono/dist/compose.js', import.meta.url).href
)) as {
  compose: HonoCompose;
};

const TEXT = 'Hello World';
// FastResponse's body type is wider than lib.dom's Response's: the same object, a looser declaration.
const app: Application = () => new FastResponse(TEXT) as unknown as Response;
const request = new Request('http://127.0.0.1/');

/** A call of one chain: resolves with the response. */
type Call = () => Promise<Response>;

function tsgiHandler(layers: number): Call {
  const signals = new SignalBus();
  signals.connect('request_started', () => {});
  signals.connect('request_finished', () => {});
  const passThrough: Middleware = (next) => (req, context) => next(req, context);
  const handler = createHandler(app, {
    middleware: Array.from({ length: layers }, () => passThrough),
    signals,
  });
  return async () => {
    const scope = new RequestScope({ fixedBody: undiciStaticBody });
    const response = await handler(request, scope.context);
    await scope.close('completed');
    return response;
  };
}

function handWritten(layers: number): Call {
  let chain = app;
  for (let i = 0; i < layers; i++) {
    const next = chain;
    chain = (req, context) => next(req, context);
  }
  const context = { state: {} } as unknown as Parameters<Application>[1];
  return async () => chain(request, context);
}

function koa(layers: number): Call {
  type Context = { request: Request; body?: Response };
  const middleware: compose.Middleware<Context>[] = Array.from(
    { length: layers },
    () => (_ctx, next) => next(),
  );
  middleware.push((ctx) => {
    ctx.body = app(ctx.request, undefined as never) as Response;
  });
  const run = compose(middleware);
  return async () => {
    const ctx: Context = { request };
    await run(ctx);
    return ctx.body!;
  };
}

function hono(layers: number): Call {
  const middleware: [[HonoHandler]][] = Array.from({ length: layers }, () => [
    [
      async (_c: HonoContext, next: () => Promise<void>) => {
        await next();
      },
    ],
  ]);
  middleware.push([[() => app(request, undefined as never)]]);
  const run = honoCompose(middleware);
  return async () => {
    const c: HonoContext = { req: { routeIndex: 0 }, finalized: false, res: undefined };
    await run(c);
    return c.res!;
  };
}

export const CHAINS: Readonly<Record<string, (layers: number) => Call>> = {
  'tsgi handler': tsgiHandler,
  'hand-written wrappers': handWritten,
  'koa-compose': koa,
  'Hono compose': hono,
};

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      name: { type: 'string' },
    },
  });
  const quick = values.quick;
  const rounds = Number(values.rounds ?? (quick ? 1 : 5));
  if (!Number.isInteger(rounds) || rounds < 1) {
    console.error(
      `--rounds ${values.rounds}: expected a whole number ≥ 1\nusage: npm run bench:in-process -- [--quick] [--rounds N]`,
    );
    return 2;
  }
  const started = performance.now();
  const cases = Object.entries(CHAINS).flatMap(([chain, build]) =>
    LAYERS.map((layers) => ({ chain, layers, call: build(layers) })),
  );
  // Each call must work before it is timed: a chain that throws would time its error path.
  for (const { chain, layers, call } of cases) {
    const response = await call();
    if ((await response.text()) !== TEXT) throw new Error(`${chain} at ${layers} layers answered wrongly`);
  }
  const times = new Map<string, number[]>();
  const progress = new Progress((rounds + 1) * cases.length, 'in-process');
  // Round 0 is a warm-up, not kept: the first case to run would otherwise also pay for compiling
  // the code every later case shares (the scope, the signals, the promise machinery).
  for (let round = 0; round <= rounds; round++) {
    for (const { chain, layers, call } of cases) {
      progress.doing(`round ${round} ${chain} at ${layers}`);
      const stats = await measure(call, { min_cpu_time: (round === 0 || quick ? 100 : 200) * 1e6 });
      const key = `${chain} ${layers}`;
      if (round > 0) times.set(key, [...(times.get(key) ?? []), stats.p50]);
      progress.done(
        `${round === 0 ? 'warm-up' : `round ${round}`} ${chain} at ${layers} layers: ${stats.p50.toFixed(0)} ns`,
      );
    }
  }
  progress.finish();

  const timings: ChainTiming[] = cases.map(({ chain, layers }) => ({
    chain,
    layers,
    rounds: times.get(`${chain} ${layers}`)!,
    nanoseconds: spread(times.get(`${chain} ${layers}`)!),
  }));
  const perLayer: LayerCost[] = Object.keys(CHAINS).map((chain) => {
    const ofRound = (round: number) => LAYERS.map((layers) => times.get(`${chain} ${layers}`)![round]!);
    const slopes = Array.from({ length: rounds }, (_, round) => slope(LAYERS, ofRound(round)));
    const fastest = LAYERS.map((layers) => Math.min(...times.get(`${chain} ${layers}`)!));
    return { chain, nanosecondsPerLayer: slope(LAYERS, fastest), spread: spread(slopes) };
  });
  const result: InProcessResult = {
    kind: 'in-process',
    machine: describeMachine(['mitata', 'koa-compose', 'hono']),
    settings: { layers: [...LAYERS], rounds, quick },
    wallSeconds: Math.round((performance.now() - started) / 100) / 10,
    timings,
    perLayer,
  };
  const file = writeResult(values.name ?? (quick ? 'in-process-quick' : 'in-process'), result);
  console.log(renderInProcessTable(result));
  console.error(`in-process: ${formatDuration(result.wallSeconds)} in all; results in ${file}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
