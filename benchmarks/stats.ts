/**
 * The maths of the benchmark results: medians, spreads, and ratios taken within one round.
 *
 * Why same-round ratios: on a shared two-core machine a target's absolute figures drift by several
 * percent from one minute to the next. Every round measures every target once, close together in
 * time, so a target's figure divided by the baseline's figure *of the same round* cancels most of the
 * drift; the spread of those ratios over the rounds (min, median, max) shows how far one round can be
 * off. Averages over shapes are geometric means (the mean of ratios that treats 0.5 × and 2 × alike),
 * taken per round before the spread, so an average's spread is a spread of rounds too.
 */

/** min, median and max of a list of figures, and how many there were. */
export interface Spread {
  min: number;
  median: number;
  max: number;
  n: number;
}

/**
 * The median of a non-empty list (the mean of the two middle values for an even count).
 *
 * @example
 * median([3, 1, 2]); // 2
 * median([4, 1, 3, 2]); // 2.5
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median() of an empty list: no round measured this target');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * min, median and max of a non-empty list.
 *
 * @example
 * spread([1.02, 0.98, 1.05]); // { min: 0.98, median: 1.02, max: 1.05, n: 3 }
 */
export function spread(values: readonly number[]): Spread {
  return { min: Math.min(...values), median: median(values), max: Math.max(...values), n: values.length };
}

/**
 * The geometric mean of a non-empty list of positive figures.
 *
 * @example
 * geometricMean([0.5, 2]); // 1
 */
export function geometricMean(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('geometricMean() of an empty list');
  return Math.exp(values.reduce((sum, value) => sum + Math.log(value), 0) / values.length);
}

/**
 * The least-squares slope of `y` against `x`.
 *
 * @example
 * slope([0, 1, 2], [10, 12, 14]); // 2
 */
export function slope(x: readonly number[], y: readonly number[]): number {
  const meanX = x.reduce((a, b) => a + b, 0) / x.length;
  const meanY = y.reduce((a, b) => a + b, 0) / y.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num += (x[i]! - meanX) * (y[i]! - meanY);
    den += (x[i]! - meanX) ** 2;
  }
  return num / den;
}

/** One measured window: a target serving one shape at one pipelining depth, in one round. */
export interface Sample {
  round: number;
  target: string;
  shape: string;
  pipelining: number;
  /** Requests the server received in the window. */
  requests: number;
  /** Responses the load generator received in the window. */
  responses: number;
  /** Wall-clock length of the window. */
  seconds: number;
  /** The server's CPU time over the window (user + system, every thread). */
  cpuMicros: number;
}

export const cpuPerRequest = (sample: Sample): number => sample.cpuMicros / sample.requests;
export const requestsPerSecond = (sample: Sample): number => sample.responses / sample.seconds;

/** A target at one shape and pipelining depth, over the rounds. */
export interface CellSummary {
  target: string;
  shape: string;
  pipelining: number;
  /** Absolute figures over the rounds (µs of server CPU per request; req/s). */
  cpuPerRequest: Spread;
  requestsPerSecond: Spread;
  /** Ratios to the baseline within each round. */
  cpuRatio: Spread;
  rpsRatio: Spread;
}

/** A target at one pipelining depth, averaged over the shapes (per round, then spread over rounds). */
export interface AverageSummary {
  target: string;
  pipelining: number;
  cpuRatio: Spread;
  rpsRatio: Spread;
}

export interface Summary {
  baseline: string;
  cells: CellSummary[];
  averages: AverageSummary[];
}

/** Thrown when the samples cannot give a ratio: the baseline was not measured in some round and cell. */
export class MissingBaselineError extends Error {
  override name = 'MissingBaselineError';
}

const cellKey = (shape: string, pipelining: number) => `${shape} ${pipelining}`;

/**
 * Summarises samples: for every target, shape and pipelining depth its absolute figures and its
 * ratios to `baseline` within the same round; and per target and depth the average over the shapes.
 * A round in which the baseline or the target lacks a cell gives no ratio for it.
 *
 * @example
 * const summary = summarize(samples, 'raw');
 * summary.cells.find((c) => c.target === 'tsgi-10' && c.shape === 'json')?.cpuRatio.median; // 1.04
 */
export function summarize(samples: readonly Sample[], baseline: string): Summary {
  const byRound = new Map<string, Sample>();
  for (const sample of samples) {
    byRound.set(`${sample.round} ${sample.target} ${cellKey(sample.shape, sample.pipelining)}`, sample);
  }
  const base = (sample: Sample) =>
    byRound.get(`${sample.round} ${baseline} ${cellKey(sample.shape, sample.pipelining)}`);
  if (!samples.some((sample) => sample.target === baseline)) {
    throw new MissingBaselineError(
      `no sample of the baseline "${baseline}": every ratio is taken against it`,
    );
  }

  const targets = unique(samples.map((sample) => sample.target));
  const cells = unique(samples.map((sample) => cellKey(sample.shape, sample.pipelining)));
  const summaries: CellSummary[] = [];
  for (const target of targets) {
    for (const cell of cells) {
      const own = samples.filter(
        (sample) => sample.target === target && cellKey(sample.shape, sample.pipelining) === cell,
      );
      const paired = own.filter((sample) => base(sample) !== undefined);
      if (own.length === 0 || paired.length === 0) continue;
      summaries.push({
        target,
        shape: own[0]!.shape,
        pipelining: own[0]!.pipelining,
        cpuPerRequest: spread(own.map(cpuPerRequest)),
        requestsPerSecond: spread(own.map(requestsPerSecond)),
        cpuRatio: spread(paired.map((sample) => cpuPerRequest(sample) / cpuPerRequest(base(sample)!))),
        rpsRatio: spread(
          paired.map((sample) => requestsPerSecond(sample) / requestsPerSecond(base(sample)!)),
        ),
      });
    }
  }

  const averages: AverageSummary[] = [];
  const depths = unique(samples.map((sample) => sample.pipelining));
  const rounds = unique(samples.map((sample) => sample.round));
  for (const target of targets) {
    for (const pipelining of depths) {
      const cpu: number[] = [];
      const rps: number[] = [];
      for (const round of rounds) {
        const paired = samples.filter(
          (sample) =>
            sample.round === round &&
            sample.target === target &&
            sample.pipelining === pipelining &&
            base(sample) !== undefined,
        );
        if (paired.length === 0) continue;
        cpu.push(geometricMean(paired.map((sample) => cpuPerRequest(sample) / cpuPerRequest(base(sample)!))));
        rps.push(
          geometricMean(paired.map((sample) => requestsPerSecond(sample) / requestsPerSecond(base(sample)!))),
        );
      }
      if (cpu.length > 0) averages.push({ target, pipelining, cpuRatio: spread(cpu), rpsRatio: spread(rps) });
    }
  }
  return { baseline, cells: summaries, averages };
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
