/**
 * Process supervision for the CLI: `runWorkers()` (`tsgi serve --workers N`, gunicorn's arbiter on
 * node:cluster) and `runReloader()` (`--reload` and `tsgi runserver`, Django's autoreloader).
 *
 * Both run the `tsgi` launcher again in child processes, with the same arguments; a child serves and
 * tells its parent over IPC when it listens ({@link notifyParent}). A child that exits before it ever
 * listened failed to start (a missing module, a port in use): it said why on stderr, and the parent
 * stops with a non-zero code instead of restarting it in a loop.
 *
 * Workers: the primary forks N workers that share the listening socket (node:cluster), prints
 * `tsgi: serving <url>` once all of them listen, and forks a replacement for every worker that dies,
 * or whose heartbeat stopped for longer than `--timeout` (heartbeat.ts: killed, and the requests it
 * held are logged). On stop it sends each worker SIGTERM (each drains its in-flight requests) and
 * waits; workers still alive after the graceful timeout get SIGKILL. What the workers' graceful
 * timeouts cut is printed as one total (graceful.ts).
 *
 * Reloader: restarts the child whenever a script or JSON file under the watched directory changes
 * (node:fs `watch` on each directory; `node_modules` and dot-directories are skipped). A restart gives
 * in-flight requests 2 s to finish. If the child dies after it once served, the reloader waits for
 * the next change. Not for production.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { type FSWatcher, readdirSync, watch } from 'node:fs';
import { join, relative } from 'node:path';
import { cutLine, isCutMessage } from './graceful.ts';
import { HeartbeatMonitor, silenceLine } from './heartbeat.ts';

/** Where the CLI writes; `process.stdout` and `process.stderr` fit. */
export interface Output {
  write(text: string): unknown;
}

/** How to run the launcher again in a child process. */
export interface ChildCommand {
  /** The launcher script (bin/tsgi.js). */
  readonly exec: string;
  readonly args: readonly string[];
  /** Node options for the child. */
  readonly execArgv: readonly string[];
  /** The child's working directory. */
  readonly cwd: string;
  /** The child's environment. */
  readonly env: Record<string, string | undefined>;
}

/** What a serving child tells its parent once it listens. */
interface ListeningMessage {
  tsgi: 'listening';
  url: string;
}

/** Tells the parent process (cluster primary or reloader) that this process now serves `url`. */
export function notifyParent(url: string): void {
  const message: ListeningMessage = { tsgi: 'listening', url };
  process.send?.(message);
}

function isListening(message: unknown): message is ListeningMessage {
  return (message as ListeningMessage | null)?.tsgi === 'listening';
}

/**
 * Runs `count` cluster workers until `stop` settles; resolves with the exit code: 0 after a clean
 * stop, 1 when the graceful timeout cut requests (one line gives the total of all workers) or a worker
 * had to be killed, or the code of a worker that failed to start.
 *
 * With `timeoutMs` above 0, a worker whose heartbeat stops for longer is killed and replaced
 * (heartbeat.ts).
 *
 * @example
 * const code = await runWorkers({ exec, args, execArgv: [], cwd, env, count: 4, gracefulTimeoutMs: 30_000, timeoutMs: 30_000, stop, stdout, stderr });
 */
export function runWorkers(
  options: ChildCommand & {
    count: number;
    gracefulTimeoutMs: number;
    /** The heartbeat limit (ms); 0: no heartbeat. */
    timeoutMs: number;
    stop: Promise<unknown>;
    stdout: Output;
    stderr: Output;
  },
): Promise<number> {
  const { count, stdout, stderr, gracefulTimeoutMs, timeoutMs } = options;
  cluster.setupPrimary({
    exec: options.exec,
    args: [...options.args],
    execArgv: [...options.execArgv],
    cwd: options.cwd,
  });
  const alive = new Set<Worker>();
  // A worker's last messages (what it cut) can still be in its channel when its exit is seen: the
  // master finishes only once every channel is closed, so it has read them all.
  const connected = new Set<Worker>();
  const ready = new Set<Worker>();
  // Killed for silence: its exit is already explained.
  const silenced = new Set<Worker>();
  let announced = false;
  let stopping = false;
  let code = 0;
  let cut = 0;

  return new Promise<number>((resolve) => {
    let killer: NodeJS.Timeout | undefined;
    const monitor = new HeartbeatMonitor(timeoutMs, (worker, silence) => {
      stderr.write(silenceLine(worker.process.pid, silence, timeoutMs, !stopping));
      silenced.add(worker);
      if (stopping) code = 1;
      worker.process.kill('SIGKILL');
    });
    const fork = (): void => {
      const worker = cluster.fork(options.env);
      alive.add(worker);
      connected.add(worker);
    };
    const stopAll = (exitCode: number): void => {
      if (stopping) return;
      stopping = true;
      code = exitCode;
      for (const worker of alive) worker.process.kill('SIGTERM');
      killer = setTimeout(() => {
        stderr.write(`tsgi: workers still running after the graceful timeout; killing them\n`);
        code = 1;
        for (const worker of alive) worker.process.kill('SIGKILL');
      }, gracefulTimeoutMs + 1000);
      maybeFinish();
    };
    const maybeFinish = (): void => {
      if (!stopping || alive.size > 0 || connected.size > 0) return;
      clearTimeout(killer);
      monitor.stop();
      cluster.off('message', onMessage);
      cluster.off('exit', onExit);
      cluster.off('disconnect', onDisconnect);
      if (cut > 0) {
        stderr.write(cutLine(cut, gracefulTimeoutMs));
        code ||= 1;
      }
      resolve(code);
    };
    const onMessage = (worker: Worker, message: unknown): void => {
      if (monitor.receive(worker, message)) return;
      if (isCutMessage(message)) {
        cut += message.count;
        return;
      }
      if (!isListening(message) || ready.has(worker)) return;
      ready.add(worker);
      monitor.watch(worker);
      stderr.write(`tsgi: worker ${worker.process.pid} ready\n`);
      if (!announced && ready.size === count) {
        announced = true;
        stdout.write(`tsgi: serving ${message.url}\n`);
      }
    };
    const onExit = (worker: Worker, exitCode: number | null, signal: string | null): void => {
      alive.delete(worker);
      monitor.forget(worker);
      const wasReady = ready.delete(worker);
      const how = signal ? `signal ${signal}` : `code ${exitCode}`;
      if (silenced.delete(worker)) {
        if (!stopping) fork();
      } else if (stopping) {
        // A worker that did not stop cleanly (it cut requests, say) said why; its code still counts.
        if (exitCode !== 0 && exitCode !== null) code ||= 1;
      } else if (!wasReady) {
        stderr.write(`tsgi: worker ${worker.process.pid} failed to start (${how}); stopping\n`);
        stopAll(exitCode || 1);
      } else {
        stderr.write(`tsgi: worker ${worker.process.pid} exited (${how}); starting another\n`);
        fork();
      }
      maybeFinish();
    };
    const onDisconnect = (worker: Worker): void => {
      connected.delete(worker);
      maybeFinish();
    };
    cluster.on('message', onMessage);
    cluster.on('exit', onExit);
    cluster.on('disconnect', onDisconnect);
    for (let i = 0; i < count; i++) fork();
    void options.stop.then(() => stopAll(0));
  });
}

/** Files whose change restarts the server: scripts and JSON, not editors' swap and backup files. */
const WATCHED = /\.(?:[cm]?[jt]sx?|json)$/;

/**
 * Runs the launcher in a child process and restarts it when a file under `dir` changes, until
 * `stop` settles; resolves with the exit code.
 *
 * @example
 * const code = await runReloader({ exec, args, execArgv: [], cwd, env, dir: 'mysite', stop, stdout, stderr });
 */
export function runReloader(
  options: ChildCommand & {
    dir: string;
    stop: Promise<unknown>;
    stdout: Output;
    stderr: Output;
  },
): Promise<number> {
  const { dir, stderr } = options;
  let child: ChildProcess | undefined;
  let everReady = false;
  let stopping = false;
  let restartPending = false;
  let debounce: NodeJS.Timeout | undefined;
  let watchers: FSWatcher[] = [];

  return new Promise<number>((resolve) => {
    const start = (): void => {
      const started = spawn(process.execPath, [...options.execArgv, options.exec, ...options.args], {
        cwd: options.cwd,
        env: { ...options.env, TSGI_RUN_MAIN: 'true' },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      child = started;
      started.stdout!.setEncoding('utf8').on('data', (text: string) => options.stdout.write(text));
      started.stderr!.setEncoding('utf8').on('data', (text: string) => stderr.write(text));
      started.on('message', (message) => {
        if (isListening(message)) everReady = true;
      });
      started.on('exit', (code, signal) => {
        child = undefined;
        if (stopping) return finish(code ?? 0);
        if (!everReady) return finish(code || 1);
        if (restartPending) {
          restartPending = false;
          return start();
        }
        stderr.write(`tsgi: the server stopped (${signal ?? `code ${code}`}); waiting for a file change\n`);
      });
    };
    const restart = (file: string): void => {
      stderr.write(`tsgi: ${file} changed; restarting\n`);
      rewatch();
      if (child === undefined) {
        start();
      } else {
        restartPending = true;
        const draining = child;
        draining.kill('SIGTERM');
        // In development a stuck stream (server-sent events) must not hold a restart for the whole
        // graceful timeout.
        setTimeout(
          () => draining.exitCode === null && draining.signalCode === null && draining.kill('SIGKILL'),
          2000,
        ).unref();
      }
    };
    const rewatch = (): void => {
      for (const watcher of watchers) watcher.close();
      watchers = directories(dir).map((directory) =>
        watch(directory, (_event, name) => {
          if (name === null || !WATCHED.test(name) || stopping) return;
          clearTimeout(debounce);
          // Editors write a file in several steps: restart once they are done.
          debounce = setTimeout(() => restart(relative(process.cwd(), join(directory, name))), 100);
        }),
      );
    };
    const finish = (code: number): void => {
      stopping = true;
      clearTimeout(debounce);
      for (const watcher of watchers) watcher.close();
      resolve(code);
    };
    void options.stop.then(() => {
      if (stopping) return;
      stopping = true;
      clearTimeout(debounce);
      if (child === undefined) finish(0);
      else child.kill('SIGTERM');
    });
    rewatch();
    start();
  });
}

/** `dir` and its subdirectories, without node_modules and dot-directories. */
function directories(dir: string): string[] {
  const found = [dir];
  for (let i = 0; i < found.length && found.length < 1000; i++) {
    for (const entry of readdirSync(found[i]!, { withFileTypes: true })) {
      if (entry.isDirectory() && entry.name !== 'node_modules' && !entry.name.startsWith('.')) {
        found.push(join(found[i]!, entry.name));
      }
    }
  }
  return found;
}
