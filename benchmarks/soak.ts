/**
 * The soak and the leak test (`npm run soak`): 100 000 requests through a site of misbehaving
 * middleware, each using a `scoped()` pg transaction and Redis, 10 % of them aborted by the client at
 * a random moment and a few hanging until the request timeout answers them. It then checks that
 * nothing leaked: request_started = request_finished, `handler.inFlight` 0, every source stream
 * closed or cancelled, the pool whole, no backend idle in transaction, one Redis connection, exactly
 * the rows the completed requests were allowed to commit, every hung request answered 503 within the
 * timeout plus the grace period and finished in bounded time, the grace reports naming the layers
 * that hung, and RSS and the V8 heap after the run within 10 % of what they were after the warm-up
 * (the server drained and garbage collected after each tenth of the requests; the median of the
 * last three readings against the first three). It prints a summary (or JSON) and exits 1 if any
 * invariant failed, 2 for a flag it cannot run with.
 *
 * It lives with the benchmarks because it measures (time, memory) and its figures go in their README;
 * it is not a speed benchmark, and nothing in it compares with a peer. The machinery is in
 * test/fixtures/soak*.ts, shared with the short form in test/soak.test.ts.
 *
 * Usage: `node --import tsx benchmarks/soak.ts [--requests 100000] [--concurrency 50]
 *   [--abort-rate 0.1] [--hang-rate 0.002] [--timeout 1000] [--grace 500] [--layers 6] [--pool 16]
 *   [--seed 1] [--slack 500] [--json]`
 */
import { parseArgs } from 'node:util';
import { checkSoak, DEFAULTS, mb, runSoak, type SoakReport } from '../test/fixtures/soak.ts';

/** A flag the soak cannot run with. */
class SoakUsageError extends Error {
  override name = 'SoakUsageError';
}

const USAGE =
  'usage: npm run soak -- [--requests N] [--concurrency N] [--abort-rate 0..1] [--hang-rate 0..1] [--timeout MS] [--grace MS] [--layers N] [--pool N] [--seed N] [--slack MS] [--json]';

function readOptions(args: string[]) {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        requests: { type: 'string' },
        concurrency: { type: 'string' },
        'abort-rate': { type: 'string' },
        'hang-rate': { type: 'string' },
        timeout: { type: 'string' },
        grace: { type: 'string' },
        layers: { type: 'string' },
        pool: { type: 'string' },
        seed: { type: 'string' },
        slack: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    throw new SoakUsageError((error as Error).message);
  }
  /** A numeric flag, checked: a typo must not silently run the default. */
  const flag = (name: string, fallback: number, kind: 'count' | 'number' | 'share'): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    const valid =
      kind === 'count'
        ? Number.isInteger(value) && value >= 1
        : kind === 'share'
          ? value >= 0 && value <= 1
          : Number.isFinite(value) && value >= 0;
    if (!valid) {
      const wanted = {
        count: 'a whole number ≥ 1',
        share: 'a share between 0 and 1',
        number: 'a number ≥ 0',
      }[kind];
      throw new SoakUsageError(`--${name} must be ${wanted}, got ${String(raw)}`);
    }
    return value;
  };
  return {
    json: values.json === true,
    requests: flag('requests', DEFAULTS.requests, 'count'),
    concurrency: flag('concurrency', DEFAULTS.concurrency, 'count'),
    abortRate: flag('abort-rate', DEFAULTS.abortRate, 'share'),
    hangRate: flag('hang-rate', DEFAULTS.hangRate, 'share'),
    timeoutMs: flag('timeout', DEFAULTS.timeoutMs, 'count'),
    gracePeriodMs: flag('grace', DEFAULTS.gracePeriodMs, 'count'),
    layers: flag('layers', DEFAULTS.layers, 'count'),
    poolMax: flag('pool', DEFAULTS.poolMax, 'count'),
    seed: flag('seed', DEFAULTS.seed, 'number'),
    slackMs: flag('slack', DEFAULTS.slackMs, 'number'),
  };
}

let parsed: ReturnType<typeof readOptions>;
try {
  parsed = readOptions(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof SoakUsageError)) throw error;
  process.stderr.write(`soak: ${error.message}\n${USAGE}\n`);
  process.exit(2);
}
const { json, ...options } = parsed;

let lastTenth = 0;
const report = await runSoak({
  ...options,
  onProgress: json
    ? undefined
    : (done, total) => {
        const tenth = Math.floor((done / total) * 10);
        if (tenth > lastTenth) {
          lastTenth = tenth;
          process.stderr.write(`soak: ${done} / ${total} requests\n`);
        }
      },
});
const { failures, notes } = checkSoak(report);

if (json) {
  const { client, closed } = report;
  // The per-request lists are summarised: the JSON stays readable.
  const summary = {
    ...report,
    client: { ...client, hung: { ...client.hung, answerMs: stats(client.hung.answerMs) } },
    drained: { ...report.drained, books: undefined },
    closed: {
      ...closed,
      books: {
        ...closed.books,
        committable: undefined,
        hung: { ...closed.books.hung, finishMs: stats(closed.books.hung.finishMs) },
      },
    },
    failures,
    notes,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} else {
  process.stdout.write(render(report, failures, notes));
}
process.exitCode = failures.length === 0 ? 0 : 1;

function stats(values: number[]): { count: number; min: number; median: number; max: number } {
  const ordered = [...values].sort((a, b) => a - b);
  const median = ordered.length === 0 ? 0 : ordered[Math.floor(ordered.length / 2)]!;
  return {
    count: ordered.length,
    min: round(ordered[0] ?? 0),
    median: round(median),
    max: round(ordered.at(-1) ?? 0),
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function render(report: SoakReport, failures: string[], notes: string[]): string {
  const { client, closed, options } = report;
  const { books } = closed;
  const seconds = report.wallMs / 1000;
  const answers = stats(client.hung.answerMs);
  const finishes = stats(books.hung.finishMs);
  const lines = [
    `soak: ${client.sent} requests in ${seconds.toFixed(1)} s (${(client.sent / (report.driveMs / 1000)).toFixed(0)} req/s while sending; the rest is the ten drains), concurrency ${options.concurrency}, ${options.layers} layers, seed ${options.seed}`,
    `  client:   ${count(client.outcomes)}; statuses ${count(client.statuses)}; ${client.fresh} on fresh connections; aborts planned ${count(client.plannedAborts)}`,
    `  server:   started ${books.started}, finished ${count(books.finished)}; statuses ${count(books.statuses)}; application ran ${books.applicationRuns} times`,
    `  leaks:    inFlight ${closed.inFlight}; sources open ${books.sources.open} of ${books.sources.opened}; pool ${closed.pool.total} clients, ${closed.pool.idle} idle, ${closed.pool.waiting} waiting; idle in transaction ${report.database.idleInTransaction}; Redis connections ${report.redis.clients}`,
    `  commits:  ${report.database.rows} rows, Redis committed ${report.redis.committed}, attempts ${report.redis.attempts}; ${report.database.mismatchCount} requests with rows their outcome forbids`,
    `  hung:     ${client.hung.sent} sent, answered ${count(client.hung.statuses)}; 503 after min ${answers.min} / median ${answers.median} / max ${answers.max} ms (timeout ${options.timeoutMs}, grace ${options.gracePeriodMs}); request_finished after median ${finishes.median} / max ${finishes.max} ms; longest request of all ${books.longestFinishMs.toFixed(0)} ms`,
    `  reports:  ${count(books.reports)}`,
    `  memory:   RSS ${mb(report.warm.rss)} MB after the warm-up → ${mb(report.drained.memory.rss)} MB at the end; growth ${(report.rssGrowth * 100).toFixed(1)} % (median of the last three tenths over the first three); heap used ${mb(report.warm.heapUsed)} → ${mb(report.drained.memory.heapUsed)} MB, growth ${(report.heapGrowth * 100).toFixed(1)} %`,
    `  trail:    after each tenth, drained and collected — RSS ${report.trail.map((reading) => mb(reading.rss)).join(' ')} MB; heap total ${report.trail.map((reading) => mb(reading.heapTotal)).join(' ')}; heap used ${report.trail.map((reading) => mb(reading.heapUsed)).join(' ')}; external ${report.trail.map((reading) => mb(reading.external)).join(' ')}`,
  ];
  if (notes.length > 0) lines.push('  notes (known, not failures):', ...notes.map((note) => `  - ${note}`));
  if (failures.length === 0) lines.push('  every invariant held');
  else lines.push(`  ${failures.length} invariants FAILED:`, ...failures.map((failure) => `  - ${failure}`));
  return `${lines.join('\n')}\n`;
}

function count(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([key, n]) => `${key} ${n}`)
    .join(', ');
}
