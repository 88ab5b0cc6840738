/**
 * Timing for `tsgi bench`: how each row's requests are sampled, and the statistics of the samples.
 *
 * Timing is wall-clock (`process.hrtime.bigint()`), sequential, one request after another: a body
 * that waits on a timer shows as its wait. A sample is µs per request over a batch of requests.
 *
 * 1. Warm-up, a quarter of the budget per row: batches double until one takes a sample's length
 *    (1/40 of the row's budget, at least 1 ms), and go on at that size until the quarter is spent.
 * 2. Sampling, the rest of the budget of all rows together: rows take one sample each in turn,
 *    round-robin, so that drift, garbage collection and a busy neighbour spread over all of them
 *    alike. Every row gets at least {@link MIN_SAMPLES} samples, so a slow request makes the run
 *    longer than the budget.
 *
 * A sample's size comes from the row's fastest batch yet: code still warming up, or a batch that a
 * collection slowed down, must not shrink every sample after it. The event loop gets a turn between
 * batches (an access log flushes there), outside the timed part.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Fewest samples a row gets, whatever the budget. */
export const MIN_SAMPLES = 5;

/** Statistics of a row's samples, in µs per request. */
export interface Timing {
  medianUs: number;
  p25Us: number;
  p75Us: number;
  minUs: number;
  maxUs: number;
  samples: number;
  /** Requests driven while sampling (warm-up not counted). */
  requests: number;
}

/** A row as the sampler sees it: a batch to time, and what it has taken so far. */
export interface Sampled {
  /** Runs `requests` requests and resolves with µs per request. */
  batch(requests: number): Promise<number>;
  /** µs per request of each sample, and the requests they took. */
  samples: number[];
  requests: number;
  /** Requests per sample, and the fastest µs per request seen so far (which sizes them). */
  perSample: number;
  fastestUs: number;
}

/** The fields of a {@link Sampled} row before any sample. */
export function unsampled(): Omit<Sampled, 'batch'> {
  return { samples: [], requests: 0, perSample: 1, fastestUs: Number.POSITIVE_INFINITY };
}

/** µs per request over `requests` calls of `drive`, one after another. */
export async function timeBatch(drive: () => Promise<void>, requests: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < requests; i++) await drive();
  return Number(process.hrtime.bigint() - started) / 1000 / requests;
}

/** Warms every row up, then samples them in turn, `timePerRowMs` each in all. */
export async function measure(rows: Sampled[], timePerRowMs: number): Promise<void> {
  const sampleUs = Math.max(1000, (timePerRowMs * 1000) / 40);
  for (const row of rows) await warmUp(row, sampleUs, timePerRowMs / 4);
  const until = performance.now() + rows.length * timePerRowMs * 0.75;
  while (performance.now() < until || rows.some((row) => row.samples.length < MIN_SAMPLES)) {
    for (const row of rows) {
      const requests = row.perSample;
      const perRequest = await row.batch(requests);
      row.samples.push(perRequest);
      row.requests += requests;
      resize(row, perRequest, sampleUs);
      await nextTurn();
    }
  }
}

async function warmUp(row: Sampled, sampleUs: number, budgetMs: number): Promise<void> {
  const until = performance.now() + budgetMs;
  let requests = 1;
  for (;;) {
    const perRequest = await row.batch(requests);
    resize(row, perRequest, sampleUs);
    if (performance.now() >= until) return;
    if (perRequest * requests < sampleUs) requests *= 2;
    await nextTurn();
  }
}

function resize(row: Sampled, perRequest: number, sampleUs: number): void {
  row.fastestUs = Math.min(row.fastestUs, Math.max(perRequest, 0.001));
  row.perSample = Math.max(1, Math.ceil(sampleUs / row.fastestUs));
}

/** The statistics of a row's samples. */
export function timing(row: Sampled): Timing {
  const sorted = [...row.samples].sort((a, b) => a - b);
  return {
    medianUs: quantile(sorted, 0.5),
    p25Us: quantile(sorted, 0.25),
    p75Us: quantile(sorted, 0.75),
    minUs: sorted[0]!,
    maxUs: sorted.at(-1)!,
    samples: sorted.length,
    requests: row.requests,
  };
}

/** The q-quantile of sorted values, interpolated between the two nearest. */
function quantile(sorted: number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const below = Math.floor(at);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (at - below);
}
