/**
 * The loopback benchmark: every target serving every shape over 127.0.0.1, with autocannon, in
 * interleaved rounds; each target's server CPU per request and req/s as ratios to raw `node:http`
 * within the same round.
 *
 * How it runs:
 * - every target's server is started once, in its own process, pinned to CPU 0 (`taskset -c 0`),
 *   and checked: it must answer each shape as shapes.ts says, or the run stops before measuring;
 *   then it is warmed up on every shape (about a second in all), so the first round meets compiled code;
 * - this process (autocannon) is pinned to CPU 1;
 * - a round runs every (shape, pipelining) cell, and for each cell every target once, with the order
 *   of the cells and of the targets rotated from round to round and cell to cell, so no target always
 *   runs first or right after the same neighbour;
 * - a window is a warm-up, then a fixed number of requests (load.ts), with the server's CPU taken in
 *   the server process over exactly those requests;
 * - the summary takes each target's ratio to raw in the same round and cell, and gives min, median
 *   and max over the rounds (stats.ts).
 *
 * Usage: `node --import tsx benchmarks/loopback/driver.ts [flags]` (`npm run bench:loopback`); `--help`
 * lists the flags. Needs two CPUs and `taskset` to pin (it runs unpinned, and says so, without).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from '../machine.ts';
import { formatDuration, Progress } from '../progress.ts';
import { type LoopbackResult, type LoopbackSettings, writeResult } from '../results.ts';
import { cpuPerRequest, requestsPerSecond, type Sample, summarize } from '../stats.ts';
import { renderLoopbackTables, renderSummaryTable } from '../table.ts';
import { ServerProcess } from './launch.ts';
import { measureWindow, warmUp } from './load.ts';
import { checkAnswer, EXPECTED, PATHS, requestAnswer, SHAPES, type Shape } from './shapes.ts';
import { BASELINE, DEFAULT_TARGETS, PACKAGES, parseTarget } from './targets.ts';

const USAGE = `usage: npm run bench:loopback -- [flags]

  --quick                 short windows, 2 rounds (about 0.5 s a window instead of 0.8)
  --rounds N              rounds (default 3; --quick: 2)
  --duration S            seconds per measured window (default 0.5; --quick: 0.3)
  --warmup S              seconds of warm-up before each window (default 0.25; --quick: 0.15)
  --connections N         autocannon connections (default 50)
  --pipelining 1,10       pipelining depths (default 1,10)
  --targets a,b           targets (default: ${DEFAULT_TARGETS.join(',')}); raw is always added
  --shapes a,b            shapes (default: ${SHAPES.join(',')})
  --name NAME             results file benchmarks/results/NAME.json (default: loopback for a full run,
                          loopback-quick for a --quick or filtered one)
  --no-pin                do not pin the servers and the load generator to separate CPUs
  --help                  this text`;

/** Thrown for a flag value the driver cannot use. */
export class UsageError extends Error {
  override name = 'UsageError';
}

function parseSettings(args: string[]): { settings: LoopbackSettings; name: string; help: boolean } {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '50' },
      pipelining: { type: 'string', default: '1,10' },
      targets: { type: 'string' },
      shapes: { type: 'string' },
      name: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const quick = values.quick;
  const number = (flag: string, text: string | undefined, fallback: number, min: number) => {
    const value = text === undefined ? fallback : Number(text);
    if (!Number.isFinite(value) || value < min)
      throw new UsageError(`--${flag} ${text}: expected a number ≥ ${min}`);
    return value;
  };
  const list = (text: string | undefined) =>
    text
      ?.split(',')
      .map((item) => item.trim())
      .filter(Boolean);
  const shapes = list(values.shapes) ?? [...SHAPES];
  for (const shape of shapes) {
    if (!(SHAPES as readonly string[]).includes(shape)) {
      throw new UsageError(`--shapes: unknown shape "${shape}" (the shapes are ${SHAPES.join(', ')})`);
    }
  }
  const asked = list(values.targets);
  const targets = [...new Set([BASELINE, ...(asked ?? DEFAULT_TARGETS)])];
  for (const target of targets) parseTarget(target);
  const pipelining = (list(values.pipelining) ?? []).map((depth) => number('pipelining', depth, 1, 1));
  if (pipelining.length === 0)
    throw new UsageError('--pipelining: give at least one depth, for example 1,10');
  const filtered = asked !== undefined || values.shapes !== undefined || values.pipelining !== '1,10';
  const canPin = !values['no-pin'] && os.availableParallelism() >= 2 && hasTaskset();
  const settings: LoopbackSettings = {
    rounds: number('rounds', values.rounds, quick ? 2 : 3, 1),
    duration: number('duration', values.duration, quick ? 0.3 : 0.5, 0.05),
    warmup: number('warmup', values.warmup, quick ? 0.15 : 0.25, 0.05),
    connections: number('connections', values.connections, 50, 1),
    pipelining,
    targets,
    shapes,
    pinned: canPin ? { server: '0', load: '1' } : undefined,
    quick,
  };
  const name = values.name ?? (quick || filtered ? 'loopback-quick' : 'loopback');
  return { settings, name, help: values.help };
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function rotate<T>(list: readonly T[], by: number): T[] {
  return list.map((_, index) => list[(index + by) % list.length]!);
}

/** Runs the loopback benchmark with `args` (the flags above); resolves with an exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseSettings>;
  try {
    parsed = parseSettings(args);
  } catch (error) {
    console.error(`${(error as Error).message}\nRun with --help for the flags.`);
    return 2;
  }
  if (parsed.help) {
    console.log(USAGE);
    return 0;
  }
  const { settings, name } = parsed;
  const wallStarted = performance.now();
  if (settings.pinned) {
    // Every thread of this process, autocannon included, goes to the load generator's CPU.
    execFileSync('taskset', ['-a', '-cp', settings.pinned.load, String(process.pid)], { stdio: 'ignore' });
  } else {
    console.error(
      'loopback: not pinning (needs two CPUs and taskset): servers and autocannon share the CPUs',
    );
  }

  const servers = new Map<string, ServerProcess>();
  let code: number;
  try {
    code = await run(settings, name, servers, wallStarted);
  } catch (error) {
    // a server that failed or answered errors: say which, without a stack through the driver
    console.error(`loopback: ${error instanceof Error ? error.message : String(error)}`);
    code = 1;
  } finally {
    for (const server of servers.values()) {
      await server.stop().catch((error: unknown) => {
        console.error(String(error));
        code = 1;
      });
    }
  }
  return code;
}

async function run(
  settings: LoopbackSettings,
  name: string,
  servers: Map<string, ServerProcess>,
  wallStarted: number,
): Promise<number> {
  const cells = (settings.shapes as Shape[]).flatMap((shape) =>
    settings.pipelining.map((pipelining) => ({ shape, pipelining })),
  );
  const startupWarmup = Math.max(0.1, (settings.quick ? 0.5 : 1) / cells.length);
  const startup = new Progress(settings.targets.length, 'starting');
  for (const target of settings.targets) {
    startup.doing(target);
    const server = await ServerProcess.launch(target, { cpu: settings.pinned?.server });
    servers.set(target, server);
    for (const shape of settings.shapes as Shape[]) {
      const problems = checkAnswer(shape, await requestAnswer(server.port, shape));
      if (problems.length > 0) {
        console.error(`loopback: ${target} answers ${PATHS[shape]} wrongly: ${problems.join('; ')}`);
        return 1;
      }
    }
    // A new process runs its first requests through the interpreter: warm every cell up once, so
    // the first round measures the same compiled code as the last.
    for (const cell of cells) {
      const options = { path: PATHS[cell.shape], status: EXPECTED[cell.shape].status, ...cell };
      await warmUp(server, { ...options, connections: settings.connections }, startupWarmup);
    }
    startup.done(`${target} listening on ${server.port}, answers every shape, warmed up`);
  }
  startup.finish();

  const samples: Sample[] = [];
  /** Each cell's last rate, so later rounds size their windows from a full window, not a warm-up. */
  const rates = new Map<string, number>();
  const progress = new Progress(settings.rounds * cells.length * settings.targets.length, 'loopback');
  for (let round = 1; round <= settings.rounds; round++) {
    for (const [index, cell] of rotate(cells, round - 1).entries()) {
      for (const target of rotate(settings.targets, round - 1 + index)) {
        const what = `round ${round} ${target} ${cell.shape} -p ${cell.pipelining}`;
        progress.doing(what);
        const window = await measureWindow(servers.get(target)!, {
          path: PATHS[cell.shape],
          status: EXPECTED[cell.shape].status,
          connections: settings.connections,
          pipelining: cell.pipelining,
          warmup: settings.warmup,
          duration: settings.duration,
          rate: rates.get(`${target} ${cell.shape} ${cell.pipelining}`),
        });
        const sample: Sample = { round, target, ...cell, ...window };
        samples.push(sample);
        rates.set(`${target} ${cell.shape} ${cell.pipelining}`, requestsPerSecond(sample));
        progress.done(
          `${what}: ${requestsPerSecond(sample).toFixed(0)} req/s, ${cpuPerRequest(sample).toFixed(2)} µs CPU/req`,
        );
      }
    }
  }
  progress.finish();

  const frameworks = new Set(settings.targets.map((target) => parseTarget(target).framework));
  const packages = [...frameworks].flatMap((framework) => PACKAGES[framework] ?? []);
  if (frameworks.has('hono')) packages.push('hono');
  const result: LoopbackResult = {
    kind: 'loopback',
    machine: describeMachine(['autocannon', ...packages]),
    settings,
    wallSeconds: Math.round((performance.now() - wallStarted) / 100) / 10,
    samples,
    summary: summarize(samples, BASELINE),
  };
  const file = writeResult(name, result);
  console.log(`${renderSummaryTable(result)}\n\n${renderLoopbackTables(result)}`);
  console.error(`loopback: ${formatDuration(result.wallSeconds)} in all; results in ${file}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
