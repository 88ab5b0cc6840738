/**
 * `handler.fetch` on real Bun and real Deno, over loopback sockets: the outcome, status and bytes
 * that request_finished reports when a client abandons a stream midway, leaves while the
 * application is still running, or takes ordinary responses on one keep-alive connection.
 *
 * Each runtime serves test/fixtures/runtimes/site.ts, which prints every lifecycle event as a JSON
 * line; the tests wait for those lines, never for a timer. Both runtimes come from devDependencies
 * (node_modules/.bin); a missing one skips its tests.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const site = fileURLToPath(new URL('./fixtures/runtimes/site.ts', import.meta.url));
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

/** A line the site printed: `listening` carries the port, `started` and `finished` the request id. */
interface Line {
  event: string;
  id?: string | null;
  port?: number;
}

/** A request_finished line from the site. */
interface Finished extends Line {
  event: 'finished';
  id: string;
  method: string;
  path: string;
  outcome: string;
  status: number;
  bytesSent: number;
  error?: string;
  contextAborted: boolean;
  released?: boolean;
  sawAbort?: boolean;
  bodyCancelled?: boolean;
}

/** How long any one wait for the site may take before the test fails (a failure, never a pause). */
const WAIT_MS = 10_000;

const runtimes = [
  {
    name: 'Bun',
    command: bin('bun'),
    args: ['run', site],
  },
  {
    name: 'Deno',
    command: bin('deno'),
    // --no-lock: a test must not write deno.lock into the repository.
    args: ['run', '--no-lock', '--allow-net=127.0.0.1', site],
  },
];

/** A runtime serving the site, and the lines it has printed. */
class RunningSite {
  readonly lines: Line[] = [];
  stderr = '';
  port = 0;
  private readonly waiters = new Set<() => void>();
  private child: ChildProcess | undefined;
  private exited = false;

  async start(command: string, args: string[]): Promise<void> {
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, DO_NOT_TRACK: '1', DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      this.stderr += text;
    });
    child.on('exit', () => {
      this.exited = true;
      this.wake();
    });
    createInterface({ input: child.stdout! }).on('line', (text) => {
      try {
        this.lines.push(JSON.parse(text) as Line);
      } catch {
        this.stderr += `(stdout) ${text}\n`;
      }
      this.wake();
    });
    const listening = await this.waitFor((line) => line.event === 'listening', 'the site to listen');
    this.port = listening.port!;
  }

  stop(): void {
    if (this.child !== undefined && !this.exited) this.child.kill('SIGKILL');
  }

  /** Resolves with the first line that `match` accepts, printed already or later. */
  waitFor(match: (line: Line) => boolean, what: string): Promise<Line> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find(match);
        if (found !== undefined) done(() => resolve(found));
        else if (this.exited)
          done(() => reject(new Error(`the runtime exited before ${what}:\n${this.stderr}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no line for ${what} within ${WAIT_MS} ms:\n${this.stderr}`))),
        WAIT_MS,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  finished(id: string): Promise<Finished> {
    return this.waitFor(
      (line) => line.event === 'finished' && line.id === id,
      `request_finished of ${id}`,
    ) as Promise<Finished>;
  }

  started(id: string): Promise<Line> {
    return this.waitFor((line) => line.event === 'started' && line.id === id, `request_started of ${id}`);
  }

  finishedLines(id: string): Finished[] {
    return this.lines.filter((line): line is Finished => line.event === 'finished' && line.id === id);
  }

  private wake(): void {
    for (const check of [...this.waiters]) check();
  }
}

/** Opens a raw connection and sends one GET; `onData` sees the response bytes as they come. */
function rawGet(port: number, target: string, onData: (total: number, socket: Socket) => void): Socket {
  const socket = connect(port, '127.0.0.1');
  let total = 0;
  socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
  socket.on('data', (data: Buffer) => {
    total += data.length;
    onData(total, socket);
  });
  socket.on('error', () => {});
  return socket;
}

/** One request on `agent`'s connection; resolves with the status, the body and whether the socket was reused. */
function send(
  agent: Agent,
  port: number,
  method: string,
  path: string,
): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        body += text;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

for (const runtime of runtimes) {
  const missing = !existsSync(runtime.command) && `${runtime.name} is not installed (node_modules/.bin)`;

  describe(`handler.fetch on ${runtime.name}`, { skip: missing }, () => {
    const running = new RunningSite();
    let next = 0;
    const newId = (label: string) => `${label}-${++next}`;

    before(() => running.start(runtime.command, runtime.args));
    after(() => running.stop());

    it('reports a stream the client abandons midway as aborted, with the bytes taken, and releases the source', async () => {
      const id = newId('abandon');
      const full = 1000 * 1000;
      const socket = rawGet(running.port, `/stream?id=${id}&chunks=1000&size=1000&delay=2`, (total, sock) => {
        if (total > 5000) sock.destroy();
      });
      const finished = await running.finished(id);
      socket.destroy();
      assert.equal(finished.outcome, 'aborted');
      assert.equal(finished.status, 200);
      assert.ok(finished.bytesSent > 0, `bytesSent ${finished.bytesSent} > 0`);
      assert.ok(finished.bytesSent < full, `bytesSent ${finished.bytesSent} < the full ${full}`);
      assert.equal(finished.released, true, "the generator's finally ran before request_finished");
      assert.equal(finished.contextAborted, true);
    });

    it('reports a client that leaves while the application runs as aborted, with status 0 and bytesSent 0', async () => {
      const id = newId('slow');
      const socket = rawGet(running.port, `/slow?id=${id}`, () => {});
      await running.started(id);
      socket.destroy();
      const finished = await running.finished(id);
      assert.equal(finished.sawAbort, true, 'context.signal aborted while the application ran');
      assert.equal(finished.outcome, 'aborted');
      assert.equal(finished.status, 0);
      assert.equal(finished.bytesSent, 0);
      assert.equal(finished.bodyCancelled, true, 'the body answered after the client left was cancelled');
    });

    it('finishes ordinary requests on one keep-alive connection once each, completed, with their bytes', async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const plain = newId('plain');
        const stream = newId('stream');
        const sized = newId('sized');
        const head = newId('head');
        const again = newId('again');
        const exchanges: [string, string, string, number, string][] = [
          // method, path, id, body bytes, body
          ['GET', `/plain?id=${plain}`, plain, 11, 'plain body\n'],
          ['GET', `/stream?id=${stream}&chunks=5&size=100`, stream, 500, ''],
          ['GET', `/sized?id=${sized}&chunks=3&size=10`, sized, 30, ''],
          ['GET', `/plain?id=${again}`, again, 11, 'plain body\n'],
          // Last: Deno answers HEAD for a streamed body with neither content-length nor chunked,
          // and Node's client then drops the connection (Deno itself would keep it).
          ['HEAD', `/plain?id=${head}`, head, 0, ''],
        ];
        for (const [index, [method, path, id, bytes, text]] of exchanges.entries()) {
          const response = await send(agent, running.port, method, path);
          assert.equal(response.status, 200, `${method} ${path}`);
          assert.equal(Buffer.byteLength(response.body), bytes, `${method} ${path}: body received`);
          if (text !== '') assert.equal(response.body, text);
          if (index > 0) assert.equal(response.reused, true, `${method} ${path} reused the connection`);
          const finished = await running.finished(id);
          assert.equal(finished.outcome, 'completed', `${method} ${path}: ${JSON.stringify(finished)}`);
          assert.equal(finished.status, 200);
          assert.equal(finished.bytesSent, bytes, `${method} ${path}: bytesSent`);
          assert.equal(finished.contextAborted, false, `${method} ${path}: context.signal`);
          assert.equal(finished.error, undefined);
        }
        // A host that aborts request.signal after a response (Deno does) would show up as a second
        // request_finished: one more request makes sure every earlier abort has been dispatched.
        const last = newId('last');
        await send(agent, running.port, 'GET', `/plain?id=${last}`);
        await running.finished(last);
        for (const [, path, id] of exchanges) {
          assert.equal(running.finishedLines(id).length, 1, `${path} finished once`);
        }
        // Nothing went wrong in the host's hands on any request so far (Deno logs a body that
        // errors while it holds it, such as one answered after the client left and then cancelled).
        const complaints = running.stderr.split('\n').filter((line) => /error/i.test(line));
        assert.deepEqual(complaints, [], running.stderr);
      } finally {
        agent.destroy();
      }
    });
  });
}
