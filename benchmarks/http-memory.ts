/**
 * The HTTP benchmark without the kernel: three hello-world targets (raw, tsgi-0, tsgi-10), each a
 * real `node:http` server, fed pipelined requests through in-memory duplex streams instead of
 * sockets. No syscalls and no load generator share the CPU, so the figures move by a few hundredths
 * of a microsecond between runs where the loopback benchmark (loopback/driver.ts) moves by a
 * microsecond: use this one to see what a change to the request path costs, and the loopback one
 * for what a server costs.
 *
 * It reports, for each target, the best of the rounds (CPU µs per request in this process) and the
 * difference to raw. Node's HTTP parsing and writing are in every figure; the difference is tsgi.
 *
 * Usage: `node --import tsx benchmarks/http-memory.ts [--rounds 5] [--requests 100000]`
 */
import { createServer, type RequestListener } from 'node:http';
import { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { createHandler, type Middleware, SignalBus, toNodeListener } from '../src/index.ts';

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n');
const PIPELINED = 8;
const CONNECTIONS = 10;

/** A connection whose client is this process: requests are pushed in, responses counted as written. */
class MemoryConnection extends Duplex {
  private responses = 0;
  private target = 0;
  private done: (() => void) | undefined;

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    for (let at = chunk.indexOf('HTTP/1.1 '); at !== -1; at = chunk.indexOf('HTTP/1.1 ', at + 1)) {
      this.responses++;
    }
    if (this.responses >= this.target) this.done?.();
    callback();
  }

  /** Sends `count` pipelined requests and resolves when their responses were written. */
  send(payload: Buffer, count: number): Promise<void> {
    return new Promise((resolve) => {
      this.target = this.responses + count;
      this.done = resolve;
      this.push(payload);
    });
  }
}

const raw: RequestListener = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain;charset=UTF-8' });
  res.end('Hello World');
};

function tsgi(layers: number): RequestListener {
  const bus = new SignalBus();
  bus.connect('request_started', () => {});
  bus.connect('request_finished', () => {});
  const passThrough: Middleware = (next) => (request, context) => next(request, context);
  const middleware = Array.from({ length: layers }, () => passThrough);
  const handler = createHandler(() => new Response('Hello World'), { middleware, signals: bus });
  // The same FastResponse swap serve() makes (toNodeListener() leaves a host's global alone by default).
  return toNodeListener(handler, { fastResponse: true }) as RequestListener;
}

/** CPU µs per request of one round of `requests` requests. */
async function round(connections: MemoryConnection[], requests: number): Promise<number> {
  const payload = Buffer.concat(Array.from({ length: PIPELINED }, () => REQUEST));
  const started = process.cpuUsage();
  for (let sent = 0; sent < requests; sent += PIPELINED * connections.length) {
    await Promise.all(connections.map((connection) => connection.send(payload, PIPELINED)));
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / requests;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '100000' } },
  });
  const targets: [string, RequestListener][] = [
    ['raw', raw],
    ['tsgi-0', tsgi(0)],
    ['tsgi-10', tsgi(10)],
  ];
  const servers = targets.map(([name, listener]) => {
    const server = createServer(listener);
    const connections = Array.from({ length: CONNECTIONS }, () => {
      const connection = new MemoryConnection();
      server.emit('connection', connection);
      return connection;
    });
    return { name, server, connections, best: Number.POSITIVE_INFINITY };
  });
  for (let i = 0; i < Number(values.rounds); i++) {
    for (const target of servers) {
      target.best = Math.min(target.best, await round(target.connections, Number(values.requests)));
    }
  }
  const rawBest = servers[0]!.best;
  for (const { name, best } of servers) {
    const extra =
      name === 'raw' ? '' : `  +${(best - rawBest).toFixed(3)} µs (${(best / rawBest).toFixed(3)} × raw)`;
    console.log(`${name.padEnd(8)} ${best.toFixed(3)} µs CPU/request${extra}`);
  }
  for (const { server, connections } of servers) {
    for (const connection of connections) connection.destroy();
    server.close();
  }
}

await main();
