/**
 * The middleware benchmark: what tsgi's built-in middleware costs, and `gzip()` against its peer.
 *
 * Three parts, chosen with `--part` (default: all three, in this order):
 * - `negotiate`: gzip's Accept-Encoding parser on typical headers and on 16 KB hostile ones
 *   (mitata, in process; nanoseconds per call).
 * - `logging`: the cost `logging()` adds to a request, in process (mitata): a request scope, the
 *   application called with its context, the scope ended, once with `logging()` around the
 *   application and once without; the difference is the layer plus formatting its line plus its
 *   share of the batched writes, to a stream that writes to /dev/null synchronously (so the text is
 *   encoded and handed to the kernel, as a file would take it, and nothing waits for `'drain'`).
 * - `gzip`: over loopback, a `node:http` server with expressjs's `compression()` against tsgi's
 *   `serve()` with `gzip()`, both answering the same 100 KB JSON body (a string) at zlib level 6
 *   (compression's default, `Z_DEFAULT_COMPRESSION`), to clients that send `Accept-Encoding: gzip`.
 *   Each server runs in its own child process pinned to CPU 0 (`taskset -c 0`, its zlib threads
 *   too); autocannon runs here, pinned to CPU 1. The server's CPU time is `process.cpuUsage()` taken
 *   in the server process (every thread, the zlib thread pool included) just before and after the
 *   measured window, divided by the responses counted. Rounds are interleaved (each starts one
 *   target further on), and the summary gives tsgi's ratio to compression within each round (median
 *   and range), which drift between rounds does not move.
 *
 * Usage: `npm run bench:middleware -- [--part negotiate,logging,gzip] [--rounds 5] [--duration 5]
 * [--warmup 1] [--connections 50]`. The gzip part needs Linux (`taskset`) and two CPUs. See
 * benchmarks/README.md for what the numbers mean.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { openSync, writeSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { measure } from 'mitata';
import { negotiate } from '../middleware/accept-encoding.ts';
import { logging } from '../middleware/index.ts';
import { RequestScope } from '../src/host.ts';
import type { Application, Middleware } from '../src/index.ts';

const LEVEL = 6;

/**
 * mitata's `measure()` with this process's CPU time (user + system, every thread) as its clock, in
 * nanoseconds, so that time the shared machine gives to other processes is not counted. The clock's
 * resolution is a microsecond, so `fn` is run a thousand times first: mitata times a batch of 4 096
 * calls per sample only when its first call is fast, and a sample of one call would read 0 or 1 µs.
 */
function measureCpu(fn: () => unknown): ReturnType<typeof measure> {
  for (let i = 0; i < 1000; i++) fn();
  return measure(fn, {
    now: () => {
      const { user, system } = process.cpuUsage();
      return (user + system) * 1000;
    },
  });
}

/** About 100 KB of JSON that looks like an API's list answer (ids, names, text, numbers, flags). */
function jsonBody(): string {
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india'];
  const items = [];
  for (let i = 0; items.length === 0 || JSON.stringify(items).length < 100 * 1024; i++) {
    items.push({
      id: i,
      name: `${words[i % words.length]} ${words[(i * 7) % words.length]} ${i}`,
      email: `user${i}@example.com`,
      score: Math.round(((i * 7919) % 10007) / 10) / 100,
      active: i % 3 !== 0,
      tags: [words[(i * 3) % words.length], words[(i * 5) % words.length]],
      createdAt: new Date(Date.UTC(2024, 0, 1) + i * 3_600_000).toISOString(),
    });
  }
  return JSON.stringify(items)
    .slice(0, 100 * 1024 - 1)
    .replace(/,[^,]*$/, ']');
}

// ---------------------------------------------------------------------------------------------
// negotiate

async function negotiatePart(): Promise<void> {
  const filler = (element: string): string => {
    let header = '';
    while (header.length + element.length + 2 <= 16 * 1024)
      header += header === '' ? element : `, ${element}`;
    return header;
  };
  const headers: [string, string][] = [
    ['typical (Chrome, curl)', 'gzip, deflate, br, zstd'],
    ['with weights', 'br;q=1.0, gzip;q=0.8, *;q=0.1'],
    ['16 KB: 2 000 short codings, gzip last', `${filler('a;q=0.5').slice(0, 16 * 1024 - 6)}, gzip`],
    ['16 KB: one long token', `${'x'.repeat(16 * 1024 - 6)}, gzip`],
    ['16 KB: whitespace and empty elements', `${' ,'.repeat(8 * 1024 - 4)}gzip`],
    ['16 KB: many q parameters', filler('gzip;q=0.001')],
    ['1 MB (past the cap)', `gzip, ${'a;q=0.5, '.repeat(128 * 1024)}`],
  ];
  console.log('Accept-Encoding negotiation (mitata, CPU ns per call)');
  for (const [name, header] of headers) {
    const stats = await measureCpu(() => negotiate(header));
    console.log(
      `  ${name.padEnd(40)} ${String(header.length).padStart(8)} chars  ${stats.avg.toFixed(0).padStart(9)} ns avg  ${stats.p50.toFixed(0).padStart(9)} ns p50  → ${negotiate(header)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// logging

async function loggingPart(): Promise<void> {
  // Discards, but as a file would take the text: encoded and handed to the kernel, once per batch.
  const devNull = openSync('/dev/null', 'w');
  const discard = {
    write: (text: string) => {
      writeSync(devNull, text);
      return true;
    },
  };
  const response = new Response('Hello World');
  const app: Application = () => response;
  const request = new Request('http://127.0.0.1:8000/articles/2024/tsgi?page=2', {
    headers: {
      referer: 'https://example.com/',
      'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0',
    },
  });
  const drive = (site: Application) => () => {
    const scope = new RequestScope({ remoteAddress: '127.0.0.1' });
    site(request, scope.context);
    scope.status = 200;
    scope.bytesSent = 11;
    scope.end('completed');
  };
  const cases: [string, Middleware | undefined][] = [
    ['no logging (the floor)', undefined],
    ["logging({ format: 'common' })", logging({ stream: discard })],
    ["logging({ format: 'combined' })", logging({ format: 'combined', stream: discard })],
    ["logging({ format: 'json' })", logging({ format: 'json', stream: discard })],
  ];
  console.log(
    '\nlogging(), in process (mitata, CPU ns per request; the floor is a scope opened and ended; added: avg over the floor)',
  );
  let floor = 0;
  for (const [name, layer] of cases) {
    const stats = await measureCpu(drive(layer === undefined ? app : layer(app)));
    await new Promise((resolve) => setImmediate(resolve)); // the last batch goes out
    if (layer === undefined) floor = stats.avg;
    const added = layer === undefined ? '' : `  +${(stats.avg - floor).toFixed(0)} ns`;
    console.log(
      `  ${name.padEnd(34)} ${stats.avg.toFixed(0).padStart(6)} ns avg ${stats.p50.toFixed(0).padStart(6)} ns p50${added}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// gzip against compression

const TARGETS = ['compression', 'tsgi-gzip'] as const;
type Target = (typeof TARGETS)[number];

interface AutocannonResult {
  requests: { total: number };
  duration: number;
  errors: number;
  non2xx: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

/** Runs in a child process: one server, its port on stdout, CPU time on request over IPC. */
async function runServer(target: Target): Promise<void> {
  const body = jsonBody();
  let port: number;
  if (target === 'compression') {
    const compression = createRequire(import.meta.url)('compression') as typeof import('compression');
    const compress = compression({ level: LEVEL });
    const server = createServer((req, res) => {
      compress(req as never, res as never, () => {
        res.setHeader('content-type', 'application/json');
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  } else {
    const { createHandler, serve, SignalBus } = await import('../src/index.ts');
    const { gzip } = await import('../middleware/index.ts');
    const app = () => new Response(body, { headers: { 'content-type': 'application/json' } });
    const handler = createHandler(app, { middleware: [gzip({ level: LEVEL })], signals: new SignalBus() });
    port = (await serve(handler, { port: 0, host: '127.0.0.1' })).port;
  }
  process.on('message', () => process.send!(process.cpuUsage()));
  console.log(port);
}

async function startServer(target: Target): Promise<{ child: ChildProcess; port: number }> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(
    'taskset',
    ['-c', '0', process.execPath, '--import', 'tsx', script, '--server', target],
    {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${target} server exited with ${code}`)));
    child.stdout!.once('data', (data: Buffer) => resolve(Number(String(data).trim())));
  });
  return { child, port };
}

function serverCpu(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (usage) => {
      const { user, system } = usage as NodeJS.CpuUsage;
      resolve(user + system);
    });
    child.send('cpu');
  });
}

/**
 * One request, to check that the server compresses and that the body gunzips to the JSON; resolves
 * with the compressed size.
 */
async function check(target: Target, url: string, body: string): Promise<number> {
  // node:http, not fetch: fetch would decompress.
  const raw = await new Promise<{ encoding: string | undefined; bytes: Buffer }>((resolve, reject) => {
    const req = request(url, { headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          encoding: res.headers['content-encoding'] as string | undefined,
          bytes: Buffer.concat(chunks),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
  if (raw.encoding !== 'gzip' || gunzipSync(raw.bytes).toString() !== body) {
    throw new Error(`${target}: the answer is not the JSON body gzipped`);
  }
  return raw.bytes.byteLength;
}

interface Sample {
  rps: number;
  cpuPerRequest: number;
  /** The compressed body's size. */
  bytes: number;
}

async function measureServer(
  autocannon: Autocannon,
  target: Target,
  options: { duration: number; warmup: number; connections: number },
  body: string,
): Promise<Sample> {
  const { child, port } = await startServer(target);
  try {
    const url = `http://127.0.0.1:${port}/`;
    const bytes = await check(target, url, body);
    const load = { url, connections: options.connections, headers: { 'accept-encoding': 'gzip' } };
    await autocannon({ ...load, duration: options.warmup });
    const before = await serverCpu(child);
    const result = await autocannon({ ...load, duration: options.duration });
    const cpu = (await serverCpu(child)) - before;
    if (result.errors > 0 || result.non2xx > 0) {
      throw new Error(`${target}: ${result.errors} errors, ${result.non2xx} non-2xx responses`);
    }
    return {
      rps: result.requests.total / result.duration,
      cpuPerRequest: cpu / result.requests.total,
      bytes,
    };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const range = (values: number[]): string =>
  `${median(values).toFixed(3)} (${Math.min(...values).toFixed(3)}–${Math.max(...values).toFixed(3)})`;

async function gzipPart(options: {
  rounds: number;
  duration: number;
  warmup: number;
  connections: number;
}): Promise<void> {
  // The load generator gets the other CPU (every thread of this process).
  try {
    execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
  } catch {
    console.log('(taskset failed: client and server share the CPUs)');
  }
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const body = jsonBody();
  console.log(
    `\ngzip() against compression(): ${body.length} bytes of JSON, level ${LEVEL}, ${options.connections} connections, ${options.duration} s per run`,
  );
  const samples = new Map<Target, Sample[]>(TARGETS.map((target) => [target, []]));
  const rpsRatios: number[] = [];
  const cpuRatios: number[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const order = TARGETS.map((_, index) => TARGETS[(index + round - 1) % TARGETS.length]!);
    const measured = new Map<Target, Sample>();
    for (const target of order) {
      const sample = await measureServer(autocannon, target, options, body);
      samples.get(target)!.push(sample);
      measured.set(target, sample);
      console.log(
        `  round ${round} ${target.padEnd(12)} ${sample.rps.toFixed(0).padStart(6)} req/s  ${sample.cpuPerRequest.toFixed(1).padStart(6)} µs CPU/request  ${sample.bytes} bytes`,
      );
    }
    const peer = measured.get('compression')!;
    const ours = measured.get('tsgi-gzip')!;
    rpsRatios.push(ours.rps / peer.rps);
    cpuRatios.push(ours.cpuPerRequest / peer.cpuPerRequest);
  }
  console.log(`\n  median of ${options.rounds} rounds     req/s   µs CPU/request`);
  for (const [target, list] of samples) {
    console.log(
      `  ${target.padEnd(24)} ${median(list.map((s) => s.rps))
        .toFixed(0)
        .padStart(6)}   ${median(list.map((s) => s.cpuPerRequest))
        .toFixed(1)
        .padStart(6)}`,
    );
  }
  console.log(
    `  tsgi-gzip / compression, same round: req/s ${range(rpsRatios)}, CPU/request ${range(cpuRatios)}`,
  );
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      part: { type: 'string', default: 'negotiate,logging,gzip' },
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '50' },
    },
  });
  if (values.server !== undefined) return runServer(values.server as Target);
  const parts = values.part.split(',');
  if (parts.includes('negotiate')) await negotiatePart();
  if (parts.includes('logging')) await loggingPart();
  if (parts.includes('gzip')) {
    await gzipPart({
      rounds: Number(values.rounds),
      duration: Number(values.duration),
      warmup: Number(values.warmup),
      connections: Number(values.connections),
    });
  }
}

await main();
