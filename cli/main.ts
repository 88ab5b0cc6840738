/**
 * The `tsgi` command line, as a function: `main(args, io)` resolves with the exit code. The launcher
 * (`cli/tsgi.ts`, built to `dist/cli/tsgi.js`, which package.json's `bin` names) calls it with
 * `process.argv.slice(2)`; tests call it directly or spawn the launcher. One file per command:
 *
 * - `tsgi serve path/to/wsgi.ts[:attr]` — serves an application (gunicorn's `module:app`; serve.ts);
 * - `tsgi runserver [[host:]port]` — the development server for the site whose settings module
 *   `TSGI_SETTINGS_MODULE` (or `--settings`) names (runserver.ts);
 * - `tsgi startproject NAME [DIR]` — writes a runnable site (startproject.ts);
 * - `tsgi bench [path/to/wsgi.ts[:attr]] [--settings MODULE]` — what each layer of the site's stack
 *   costs per request, measured in process (bench.ts).
 *
 * A server prints one line, `tsgi: serving <url>`, on stdout once it listens. SIGTERM or SIGINT (or
 * `io.signal` aborting) stops accepting connections, lets in-flight requests finish for at most the
 * graceful timeout, and exits 0 (1, with a line saying how many, if it had to cut requests); a second
 * signal exits at once. Every failure is one line on stderr
 * starting with `tsgi:` (a site that throws while loading: its message and the file:line it was
 * thrown at; `--verbose` prints the whole stack instead); usage errors add a `--help` hint and exit
 * 2, other failures exit 1.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LoadError, oneLine } from '../src/loader.ts';
import { describe } from '../src/report.ts';
import { UsageError } from './args.ts';
import { benchCommand } from './bench.ts';
import type { ServerIO } from './runner.ts';
import { runserverCommand } from './runserver.ts';
import { serveCommand } from './serve.ts';
import { startprojectCommand } from './startproject.ts';
import { HELP, VERSION } from './usage.ts';

/** Where `main()` reads and writes; every field defaults to the process's own. */
export interface CliIO extends ServerIO {
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/**
 * Runs the `tsgi` command line with `args` (without `node` and the script) and resolves with the exit
 * code. Servers resolve once they have stopped.
 *
 * @example
 * const code = await main(['startproject', 'mysite', '/tmp/mysite']);
 * const controller = new AbortController();
 * const serving = main(['serve', '/tmp/mysite/wsgi.ts', '--port', '0'], { signal: controller.signal });
 * controller.abort(); // drains and stops; `await serving` is 0
 */
export async function main(args: string[], io: CliIO = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  try {
    const [command, ...rest] = args;
    switch (command) {
      case undefined:
        stderr.write(HELP);
        return 2;
      case '-h':
      case '--help':
      case 'help':
        (io.stdout ?? process.stdout).write(HELP);
        return 0;
      case '-v':
      case '--version':
        (io.stdout ?? process.stdout).write(`tsgi ${VERSION}\n`);
        return 0;
      case 'serve':
        return await serveCommand(rest, io);
      case 'runserver':
        return await runserverCommand(rest, io);
      case 'startproject':
        return await startprojectCommand(rest, io);
      case 'bench':
        return await benchCommand(rest, io);
      default:
        throw new UsageError(
          command.startsWith('-') ? `unknown option '${command}'` : `unknown command '${command}'`,
        );
    }
  } catch (error) {
    if (error instanceof UsageError) {
      stderr.write(`tsgi: ${error.message} (run 'tsgi --help' for usage)\n`);
      return 2;
    }
    stderr.write(failure(error, verbose(args)));
    return 1;
  }
}

/**
 * A failure for the terminal. tsgi's own errors (LoadError, ImproperlyConfigured…) say what is wrong,
 * and where a site threw, in a line that starts with 'tsgi: '; anything else is shown by name and
 * message. `--verbose` adds the stack of what was thrown.
 */
function failure(error: unknown, verbose: boolean): string {
  const ours = error instanceof Error && error.message.startsWith('tsgi: ');
  const at = syntaxErrorAt(error);
  const line = `${ours ? oneLine(error.message) : `tsgi: ${oneLine(error)}`}${at === undefined ? '' : ` (at ${at})`}`;
  if (!verbose) return `${line}\n`;
  let thrown = error;
  while (thrown instanceof Error && thrown.cause !== undefined && thrown.message.startsWith('tsgi: ')) {
    thrown = thrown.cause;
  }
  const stack = thrown instanceof Error && thrown.stack ? thrown.stack : describe(thrown);
  return `${line}\n${stack}\n`;
}

/** `--verbose` anywhere before a `--`: it changes how a failure is printed, so it is read before parsing. */
function verbose(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--verbose');
}

/**
 * Where a JavaScript site's syntax error is. Node 20 keeps an ES module's syntax error location out of
 * the error (it prints it only for a fatal one), so on this failure path alone `node --check` is asked
 * for it. It checks the named file only: a syntax error in a module it imports stays without a place.
 */
function syntaxErrorAt(error: unknown): string | undefined {
  if (!(error instanceof LoadError) || !(error.cause instanceof SyntaxError)) return undefined;
  const file = error.file;
  if (file === undefined || !/\.[cm]?js$/.test(file) || error.message.includes(' (at ')) return undefined;
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 5000 });
  const place = /^((?:file:\/\/)?\/\S+?):(\d+)$/m.exec(check.stderr ?? '');
  if (place === null) return undefined;
  return `${place[1]!.startsWith('file:') ? fileURLToPath(place[1]!) : place[1]}:${place[2]}`;
}
