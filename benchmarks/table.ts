/**
 * The markdown tables of a run: for the loopback suite, a summary (per target, averaged over the
 * shapes) and server CPU per request and req/s as ratios to raw per target and shape, one pair of
 * tables per pipelining depth; for the in-process suite,
 * nanoseconds per call at each layer count and per added layer. The driver prints them, and
 * `npm run bench:report` writes them to benchmarks/results/table.md.
 *
 * A cell reads `median (min–max)` over the rounds of the ratio taken within each round; the first row
 * gives raw's own figures, so a ratio can be turned back into microseconds or requests per second.
 */
import { machineLine } from './machine.ts';
import type { InProcessResult, LoopbackResult } from './results.ts';
import type { Spread } from './stats.ts';

/**
 * A spread as `median (min–max)`.
 *
 * @example
 * formatSpread({ min: 0.981, median: 1.02, max: 1.049, n: 3 }); // '1.02 (0.98–1.05)'
 */
export function formatSpread(value: Spread, digits = 2): string {
  const f = (x: number) => x.toFixed(digits);
  return value.n > 1 ? `${f(value.median)} (${f(value.min)}–${f(value.max)})` : f(value.median);
}

/** A depth's name in headings: "non-pipelined" or "pipelined -p 10". */
export function depthName(pipelining: number): string {
  return pipelining === 1 ? 'non-pipelined' : `pipelined \`-p ${pipelining}\``;
}

function table(header: string[], rows: string[][]): string {
  const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`);
  return lines.join('\n');
}

/**
 * The loopback tables: per pipelining depth, CPU per request and req/s as ratios to raw.
 *
 * @example
 * console.log(renderLoopbackTables(readResult('loopback')!));
 */
export function renderLoopbackTables(result: LoopbackResult): string {
  const { settings, summary } = result;
  const targets = settings.targets;
  const shapes = settings.shapes;
  const rounds = `${settings.rounds} round${settings.rounds === 1 ? '' : 's'}`;
  const parts: string[] = [];
  for (const pipelining of settings.pipelining) {
    const cell = (target: string, shape: string) =>
      summary.cells.find((c) => c.target === target && c.shape === shape && c.pipelining === pipelining);
    const average = (target: string) =>
      summary.averages.find((a) => a.target === target && a.pipelining === pipelining);
    const header = ['target', ...shapes.map((shape) => `\`${shape}\``), 'all shapes'];
    const others = targets.filter((target) => target !== summary.baseline);
    const setting = `${depthName(pipelining)}, ${settings.connections} connections, ${rounds}`;

    parts.push(`#### Server CPU per request, ratio to ${summary.baseline} (${setting})\n`);
    parts.push(
      table(header, [
        [
          `${summary.baseline} (µs/req)`,
          ...shapes.map((shape) => {
            const c = cell(summary.baseline, shape);
            return c ? c.cpuPerRequest.median.toFixed(2) : '–';
          }),
          '1',
        ],
        ...others.map((target) => [
          target,
          ...shapes.map((shape) => {
            const c = cell(target, shape);
            return c ? formatSpread(c.cpuRatio) : '–';
          }),
          (() => {
            const a = average(target);
            return a ? `**${formatSpread(a.cpuRatio)}**` : '–';
          })(),
        ]),
      ]),
    );
    parts.push(`\n#### Requests per second, ratio to ${summary.baseline} (${setting})\n`);
    parts.push(
      table(header, [
        [
          `${summary.baseline} (req/s)`,
          ...shapes.map((shape) => {
            const c = cell(summary.baseline, shape);
            return c ? Math.round(c.requestsPerSecond.median).toString() : '–';
          }),
          '1',
        ],
        ...others.map((target) => [
          target,
          ...shapes.map((shape) => {
            const c = cell(target, shape);
            return c ? formatSpread(c.rpsRatio) : '–';
          }),
          (() => {
            const a = average(target);
            return a ? formatSpread(a.rpsRatio) : '–';
          })(),
        ]),
      ]),
    );
    parts.push('');
  }
  return parts.join('\n');
}

/**
 * The summary: per target, CPU per request and req/s as ratios to raw averaged over the shapes, one
 * column per pipelining depth, each `median (min–max)` over the rounds.
 *
 * @example
 * console.log(renderSummaryTable(readResult('loopback')!));
 */
export function renderSummaryTable(result: LoopbackResult): string {
  const { settings, summary } = result;
  const depths = settings.pipelining;
  const short = (pipelining: number) => (pipelining === 1 ? 'no pipelining' : `\`-p ${pipelining}\``);
  const header = [
    'target',
    ...depths.map((pipelining) => `CPU/req, ${short(pipelining)}`),
    ...depths.map((pipelining) => `req/s, ${short(pipelining)}`),
  ];
  const base = (pipelining: number, pick: (c: (typeof summary.cells)[number]) => number) =>
    summary.cells.filter((c) => c.target === summary.baseline && c.pipelining === pipelining).map(pick);
  const rows = [
    [
      `${summary.baseline} (µs/req; req/s)`,
      ...depths.map((pipelining) => {
        const values = base(pipelining, (c) => c.cpuPerRequest.median);
        return values.length > 0
          ? `${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)} µs`
          : '–';
      }),
      ...depths.map((pipelining) => {
        const values = base(pipelining, (c) => c.requestsPerSecond.median / 1000);
        return values.length > 0
          ? `${Math.min(...values).toFixed(0)}k–${Math.max(...values).toFixed(0)}k`
          : '–';
      }),
    ],
    ...settings.targets
      .filter((target) => target !== summary.baseline)
      .map((target) => {
        const average = (pipelining: number) =>
          summary.averages.find((a) => a.target === target && a.pipelining === pipelining);
        return [
          target,
          ...depths.map((pipelining) => {
            const a = average(pipelining);
            return a ? formatSpread(a.cpuRatio) : '–';
          }),
          ...depths.map((pipelining) => {
            const a = average(pipelining);
            return a ? formatSpread(a.rpsRatio) : '–';
          }),
        ];
      }),
  ];
  return table(header, rows);
}

/**
 * The in-process table: ns per call at each layer count (each one's fastest round), and ns per
 * added layer.
 *
 * @example
 * console.log(renderInProcessTable(readResult('in-process')!));
 */
export function renderInProcessTable(result: InProcessResult): string {
  const layers = result.settings.layers;
  const chains = [...new Set(result.timings.map((timing) => timing.chain))];
  const rows = chains.map((chain) => {
    const cost = result.perLayer.find((entry) => entry.chain === chain);
    return [
      chain,
      ...layers.map((count) => {
        const timing = result.timings.find((t) => t.chain === chain && t.layers === count);
        return timing ? timing.nanoseconds.min.toFixed(0) : '–';
      }),
      cost
        ? `**${cost.nanosecondsPerLayer.toFixed(1)}** (${cost.spread.min.toFixed(1)}–${cost.spread.max.toFixed(1)})`
        : '–',
    ];
  });
  const caption = `ns per call at each layer count (the fastest of ${result.settings.rounds} rounds) and ns per added layer (the slope; each round's own slope min–max)`;
  return `${caption}\n\n${table(['chain', ...layers.map((count) => (count === 1 ? '1 layer' : `${count} layers`)), 'ns per layer'], rows)}`;
}

/** table.md: both suites' tables under headings, each with the machine and date it came from. */
export function renderTables(
  loopback: LoopbackResult | undefined,
  inProcess: InProcessResult | undefined,
): string {
  const parts: string[] = [];
  if (loopback) {
    const { settings } = loopback;
    parts.push(`### Over loopback: ratios to raw node:http, averaged over the shapes\n`);
    parts.push(
      `${machineLine(loopback.machine)}; tsgi ${loopback.machine.commit}, ${loopback.machine.date.slice(0, 10)}; ${settings.connections} connections, ${settings.rounds} rounds of ${settings.duration} s windows; median (min–max) over the rounds of the ratio within each round.\n`,
    );
    parts.push(renderSummaryTable(loopback));
    parts.push(`\n### Over loopback, per shape\n`);
    parts.push(renderLoopbackTables(loopback));
  }
  if (inProcess) {
    parts.push(`### In process: cost per layer\n`);
    parts.push(
      `${machineLine(inProcess.machine)}; tsgi ${inProcess.machine.commit}, ${inProcess.machine.date.slice(0, 10)}.\n`,
    );
    parts.push(renderInProcessTable(inProcess));
    parts.push('');
  }
  return parts.join('\n');
}
