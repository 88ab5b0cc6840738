/**
 * Renders a run's chart and table from its result files, without measuring anything:
 * benchmarks/results/chart.svg (loopbackChart) and benchmarks/results/table.md (both suites' tables).
 *
 * Usage: `npm run bench:report -- [--loopback loopback] [--in-process in-process] [--out ""]`: the
 * result names to read (results/<name>.json) and a suffix for the files written (`--out -quick`
 * writes chart-quick.svg and table-quick.md). `npm run bench` calls it after measuring.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loopbackChart, renderChart } from './chart.ts';
import { type InProcessResult, type LoopbackResult, RESULTS_DIR, readResult } from './results.ts';
import { renderTables } from './table.ts';

/** Writes the chart and the table; resolves with an exit code. */
export function main(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      loopback: { type: 'string', default: 'loopback' },
      'in-process': { type: 'string', default: 'in-process' },
      out: { type: 'string', default: '' },
    },
  });
  const loopback = readResult<LoopbackResult>(values.loopback);
  const inProcess = readResult<InProcessResult>(values['in-process']);
  if (loopback === undefined && inProcess === undefined) {
    console.error(
      `bench:report: neither results/${values.loopback}.json nor results/${values['in-process']}.json exists — run npm run bench first`,
    );
    return 1;
  }
  const written: string[] = [];
  if (loopback) {
    const chart = new URL(`chart${values.out}.svg`, RESULTS_DIR);
    writeFileSync(chart, renderChart(loopbackChart(loopback)));
    written.push(chart.pathname);
  }
  const table = new URL(`table${values.out}.md`, RESULTS_DIR);
  writeFileSync(table, renderTables(loopback, inProcess));
  written.push(table.pathname);
  console.error(`bench:report: wrote ${written.join(', ')}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
