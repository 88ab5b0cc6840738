/**
 * `npm run bench`: the whole suite — the loopback benchmark (loopback/driver.ts), then the in-process
 * one (in-process.ts), each in a process of its own, then the chart and the table (report.ts).
 * About eight minutes on two cores with the defaults; `--quick` about three.
 *
 * Flags go to the loopback driver (`--targets`, `--shapes`, `--pipelining`, `--rounds`, …, see
 * `npm run bench:loopback -- --help`); `--quick` goes to both suites, and `--only loopback` or
 * `--only in-process` runs one of them. A quick or filtered run writes its files with a `-quick`
 * suffix (results/loopback-quick.json, chart-quick.svg, table-quick.md), so it never replaces the
 * full run's figures that the README shows.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { formatDuration } from './progress.ts';
import { main as report } from './report.ts';

const TSX = import.meta.resolve('tsx');

function child(script: string, args: string[]): Promise<number> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const process_ = spawn(process.execPath, ['--import', TSX, path, ...args], { stdio: 'inherit' });
  return new Promise((resolve) => {
    process_.once('exit', (code) => resolve(code ?? 1));
    process_.once('error', () => resolve(1));
  });
}

const USAGE = `usage: npm run bench -- [--quick] [--only loopback|in-process] [loopback flags]

Runs the loopback benchmark, then the in-process one, then writes benchmarks/results/chart.svg and
table.md. The loopback flags (--targets, --shapes, --pipelining, --rounds, --duration, …) are listed
by npm run bench:loopback -- --help.`;

async function main(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const started = performance.now();
  const onlyAt = args.indexOf('--only');
  const only = onlyAt === -1 ? undefined : args[onlyAt + 1];
  if (only !== undefined && only !== 'loopback' && only !== 'in-process') {
    console.error(`--only ${only}: expected loopback or in-process`);
    return 2;
  }
  const rest = onlyAt === -1 ? args : args.filter((_, index) => index !== onlyAt && index !== onlyAt + 1);
  const quick = rest.includes('--quick');
  const partial = quick || rest.some((arg) => /^--(targets|shapes|pipelining)(=|$)/.test(arg));
  const suffix = partial ? '-quick' : '';
  if (only !== 'in-process') {
    const code = await child('./loopback/driver.ts', [...rest, '--name', `loopback${suffix}`]);
    if (code !== 0) return code;
  }
  if (only !== 'loopback') {
    const code = await child('./in-process.ts', [
      ...(quick ? ['--quick'] : []),
      '--name',
      `in-process${suffix}`,
    ]);
    if (code !== 0) return code;
  }
  const code = report([
    '--loopback',
    `loopback${suffix}`,
    '--in-process',
    `in-process${suffix}`,
    // joined with = : parseArgs takes a separate "-quick" for a flag, not a value
    `--out=${suffix}`,
  ]);
  console.error(`bench: ${formatDuration((performance.now() - started) / 1000)} in all`);
  return code;
}

process.exitCode = await main(process.argv.slice(2));
