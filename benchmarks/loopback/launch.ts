/**
 * Starting a target's server as a child process, and talking to it: the driver's and the test's side
 * of server.ts.
 *
 * With `cpu` set the child runs under `taskset -c <cpu>`, so the server (every thread it starts) has
 * that CPU to itself while the load generator runs on the other. The child reports its own CPU time
 * over IPC (`begin()` / `end()`), so no `/proc` parsing and no 10 ms clock ticks are involved.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromServer, ToServer } from './server.ts';

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

/** Thrown when a target's server could not start, stopped answering, or failed to close. */
export class ServerProcessError extends Error {
  override name = 'ServerProcessError';
}

export interface LaunchOptions {
  /** Pin the server to this CPU list (`taskset -c`); undefined runs it unpinned. */
  cpu?: string | undefined;
}

/** A running target server in its own process. */
export class ServerProcess {
  readonly target: string;
  /** The port it listens on at 127.0.0.1 (known once launch() resolves). */
  port = 0;
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  readonly #queue: FromServer[] = [];
  #waiting: ((message: FromServer) => void) | undefined;

  private constructor(target: string, child: ChildProcess) {
    this.target = target;
    this.#child = child;
    child.on('message', (message: FromServer) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      if (waiting) waiting(message);
      else this.#queue.push(message);
    });
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
  }

  /** Starts `target` (a name targets.ts parses) and resolves once it listens. */
  static async launch(target: string, options: LaunchOptions = {}): Promise<ServerProcess> {
    const args = ['--import', TSX, SERVER, target];
    const stdio = ['ignore', 'ignore', 'inherit', 'ipc'] as const;
    const child =
      options.cpu === undefined
        ? spawn(process.execPath, args, { stdio: [...stdio] })
        : spawn('taskset', ['-c', options.cpu, process.execPath, ...args], { stdio: [...stdio] });
    const server = new ServerProcess(target, child);
    const ready = await server.#next();
    if (ready.type !== 'ready') {
      child.kill();
      throw new ServerProcessError(`${target}: the server did not start: ${describe(ready)}`);
    }
    server.port = ready.port;
    return server;
  }

  /** Starts the measured window: resolves once the server has taken its CPU reading. */
  async begin(): Promise<void> {
    await this.#ask({ type: 'begin' }, 'begun');
  }

  /** Ends the measured window: the server's CPU microseconds (user + system) and requests since begin(). */
  async end(): Promise<{ micros: number; requests: number }> {
    const answer = await this.#ask({ type: 'end' }, 'cpu');
    if (answer.type !== 'cpu') throw new ServerProcessError(`${this.target}: no CPU reading`);
    return { micros: answer.micros, requests: answer.requests };
  }

  /** Closes the server and waits for its process to exit; rejects when closing failed. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.send({ type: 'stop' } satisfies ToServer);
    const code = await this.#exited;
    if (code !== 0) {
      const failure = this.#queue.find((message) => message.type === 'failed');
      throw new ServerProcessError(
        `${this.target}: the server exited with ${code}${failure ? `: ${describe(failure)}` : ''}`,
      );
    }
  }

  async #ask(message: ToServer, expected: FromServer['type']): Promise<FromServer> {
    this.#child.send(message);
    const answer = await this.#next();
    if (answer.type !== expected) {
      throw new ServerProcessError(
        `${this.target}: expected "${expected}" from the server, got ${describe(answer)}`,
      );
    }
    return answer;
  }

  /** The next message, or a `failed` one when the process exits first. */
  #next(): Promise<FromServer> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return Promise.race([
      new Promise<FromServer>((resolve) => {
        this.#waiting = resolve;
      }),
      this.#exited.then(
        (code): FromServer => ({ type: 'failed', message: `the process exited with ${code}` }),
      ),
    ]);
  }
}

function describe(message: FromServer): string {
  return message.type === 'failed' ? message.message : JSON.stringify(message);
}
