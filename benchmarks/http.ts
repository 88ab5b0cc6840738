/**
 * The HTTP benchmark: what a request costs over loopback, tsgi against raw `node:http`.
 *
 * Targets, each a hello-world server answering `Hello World` (text/plain, 11 bytes):
 * - `raw`: `node:http` alone, `res.writeHead(200, …); res.end('Hello World')` (Node frames it chunked);
 * - `raw-length`: the same with a `Content-Length`, as tsgi sends — cheaper for Node, the stricter
 *   baseline;
 * - `tsgi-0`: `serve(createHandler(app))`, where `app` returns a plain global `new Response('Hello World')`;
 * - `tsgi-10`: the same with ten pass-through middleware (`(next) => (req, ctx) => next(req, ctx)`).
 * - `tsgi-10-undici`: `tsgi-10` with `fastResponse: false` (the global `Response` left alone).
 *
 * Every tsgi target has a receiver connected to `request_started` and to `request_finished`.
 *
 * Each server runs in its own process pinned to CPU 0 (`taskset -c 0`); autocannon runs in this
 * process, pinned to CPU 1. Rounds are interleaved (raw, tsgi-0, tsgi-10, raw, …) so that drift in the
 * machine hits every target alike (each round starts one target further on). For every measured run
 * it records requests per second and the server's CPU time per request: utime + stime from
 * `/proc/PID/stat` over the measured window, divided by the responses autocannon counted. The summary
 * gives each target's median over the rounds and its ratio to raw's median, and the median (and range)
 * of its ratio to raw within each round, which drift between rounds does not move.
 *
 * Usage: `npm run bench -- [--rounds 3] [--duration 5] [--warmup 1] [--connections 10] [--only raw,tsgi-10]`
 * Needs Linux (`/proc`, `taskset`). See benchmarks/README.md for what the numbers mean.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const TARGETS = ['raw', 'raw-length', 'tsgi-0', 'tsgi-10', 'tsgi-10-undici'] as const;
type Target = (typeof TARGETS)[number];

interface AutocannonResult {
  requests: { total: number; average: number };
  duration: number;
  errors: number;
  non2xx: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

/** Runs in a child process: starts one server, prints its port, serves until killed. */
async function runServer(target: Target): Promise<void> {
  if (target === 'raw' || target === 'raw-length') {
    // `raw` is the hello world as usually written (Node then frames it chunked); `raw-length` sends a
    // Content-Length as tsgi does, which Node frames more cheaply: the stricter baseline.
    const headers: Record<string, string> = { 'content-type': 'text/plain;charset=UTF-8' };
    if (target === 'raw-length') headers['content-length'] = '11';
    const server = createServer((_req, res) => {
      res.writeHead(200, headers);
      res.end('Hello World');
    });
    server.keepAliveTimeout = 5000;
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      console.log(typeof address === 'object' && address ? address.port : 0);
    });
    return;
  }
  const { createHandler, serve, SignalBus } = await import('../src/index.ts');
  type Middleware = import('../src/index.ts').Middleware;
  const bus = new SignalBus();
  let started = 0;
  let finished = 0;
  bus.connect('request_started', () => {
    started++;
  });
  bus.connect('request_finished', () => {
    finished++;
  });
  const layers = target === 'tsgi-0' ? 0 : 10;
  const passThrough: Middleware = (next) => (request, context) => next(request, context);
  const middleware = Array.from({ length: layers }, () => passThrough);
  const app = () => new Response('Hello World');
  // tsgi-10-undici: the global Response left alone (`fastResponse: false`), so the app's responses are undici's.
  const fastResponse = target !== 'tsgi-10-undici';
  const server = await serve(createHandler(app, { middleware, signals: bus }), { port: 0, fastResponse });
  console.log(server.port);
  process.on('SIGTERM', () => {
    void server.close().then(() => {
      if (started !== finished)
        console.error(`signals out of balance: ${started} started, ${finished} finished`);
      process.exit(0);
    });
  });
}

/** utime + stime of `pid`, in microseconds. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / CLOCK_TICKS) * 1e6;
}

const CLOCK_TICKS = Number(safeExec('getconf', ['CLK_TCK']) || 100);

function safeExec(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

async function startServer(target: Target): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    'taskset',
    ['-c', '0', process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), '--server', target],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${target} server exited with ${code}`)));
    child.stdout!.once('data', (data: Buffer) => resolve(Number(String(data).trim())));
  });
  return { child, port };
}

async function stopServer(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

interface Sample {
  rps: number;
  cpuPerRequest: number;
}

async function measure(
  autocannon: Autocannon,
  target: Target,
  options: { duration: number; warmup: number; connections: number },
): Promise<Sample> {
  const { child, port } = await startServer(target);
  try {
    const url = `http://127.0.0.1:${port}/`;
    await autocannon({ url, connections: options.connections, duration: options.warmup });
    const before = cpuMicros(child.pid!);
    const result = await autocannon({ url, connections: options.connections, duration: options.duration });
    const cpu = cpuMicros(child.pid!) - before;
    if (result.errors > 0 || result.non2xx > 0) {
      throw new Error(`${target}: ${result.errors} errors, ${result.non2xx} non-2xx responses`);
    }
    return { rps: result.requests.total / result.duration, cpuPerRequest: cpu / result.requests.total };
  } finally {
    await stopServer(child);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '10' },
      only: { type: 'string' },
    },
  });
  if (values.server !== undefined) return runServer(values.server as Target);

  // The load generator gets the other CPU (every thread of this process).
  safeExec('taskset', ['-a', '-cp', '1', String(process.pid)]);
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const targets = values.only ? (values.only.split(',') as Target[]) : [...TARGETS];
  const options = {
    duration: Number(values.duration),
    warmup: Number(values.warmup),
    connections: Number(values.connections),
  };
  const rounds = Number(values.rounds);
  const samples = new Map<Target, Sample[]>(targets.map((target) => [target, []]));
  /** Each target's CPU per request over raw's in the same round: drift between rounds cancels out. */
  const ratios = new Map<Target, number[]>(targets.map((target) => [target, []]));
  for (let round = 1; round <= rounds; round++) {
    // Each round starts one target further on, so no target always runs first (or right after raw).
    const order = targets.map((_, index) => targets[(index + round - 1) % targets.length]!);
    const measured = new Map<Target, Sample>();
    for (const target of order) {
      const sample = await measure(autocannon, target, options);
      samples.get(target)!.push(sample);
      measured.set(target, sample);
      console.log(
        `round ${round} ${target.padEnd(10)} ${sample.rps.toFixed(0).padStart(7)} req/s  ${sample.cpuPerRequest.toFixed(2).padStart(6)} µs CPU/request`,
      );
    }
    const rawSample = measured.get('raw');
    if (rawSample !== undefined) {
      for (const [target, sample] of measured) {
        ratios.get(target)!.push(sample.cpuPerRequest / rawSample.cpuPerRequest);
      }
    }
  }
  const raw = samples.get('raw');
  const rawRps = raw ? median(raw.map((s) => s.rps)) : undefined;
  const rawCpu = raw ? median(raw.map((s) => s.cpuPerRequest)) : undefined;
  console.log(`\nmedian of ${rounds} rounds, ${options.duration} s each, ${options.connections} connections`);
  console.log(
    'target        req/s   µs CPU/req   req/s vs raw   CPU vs raw   CPU vs raw, same round: median (min–max)',
  );
  for (const [target, list] of samples) {
    const rps = median(list.map((s) => s.rps));
    const cpu = median(list.map((s) => s.cpuPerRequest));
    const rpsRatio = rawRps ? (rps / rawRps).toFixed(3) : '-';
    const cpuRatio = rawCpu ? (cpu / rawCpu).toFixed(3) : '-';
    const paired = ratios.get(target)!;
    const pairedText =
      paired.length > 0
        ? `${median(paired).toFixed(3)} (${Math.min(...paired).toFixed(3)}–${Math.max(...paired).toFixed(3)})`
        : '-';
    console.log(
      `${target.padEnd(10)} ${rps.toFixed(0).padStart(8)} ${cpu.toFixed(2).padStart(12)} ${rpsRatio.padStart(14)} ${cpuRatio.padStart(12)}   ${pairedText}`,
    );
  }
}

await main();
