/**
 * Where the `tsgi` command lives, and how a supervisor runs it again in a child process.
 *
 * The CLI runs either built (`dist/cli/*.js`, what the npm package ships) or from this repository's
 * sources (`cli/*.ts` under tsx, for tsgi's own tests and `npm start`). Both layouts are told apart
 * here, once, by this module's own extension.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stopSignal } from './runner.ts';
import type { Output } from './supervisor.ts';

/** True when the CLI runs from its TypeScript sources (so a TypeScript loader is already active). */
export const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** The package's root folder, as a URL ending in '/'. */
export const PACKAGE_ROOT = new URL(FROM_SOURCES ? '../' : '../../', import.meta.url);

/** A module of the CLI beside this one, by its name without extension, in the layout that runs. */
export function cliModule(name: string): URL {
  return new URL(`./${name}.${FROM_SOURCES ? 'ts' : 'js'}`, import.meta.url);
}

/** The launcher script that `bin` names: `dist/cli/tsgi.js`, or `cli/tsgi.ts` in the repository. */
export const LAUNCHER = fileURLToPath(cliModule('tsgi'));

/**
 * Node options a child needs to run the launcher from sources when this process was not started by
 * the launcher (a test calling `main()` directly): tsx. The launcher's resolve hook then maps 'tsgi'
 * to this repository's sources.
 */
const SOURCE_EXEC_ARGV = ['--import', 'tsx'];

/** How a supervisor runs this command again in a child. */
export function relaunch(
  command: string,
  args: string[],
): { exec: string; args: string[]; execArgv: string[] } {
  // Node options given to the launcher (--max-old-space-size…) go to the children too; a test
  // runner's own options do not.
  const main = process.argv[1];
  const fromLauncher = main !== undefined && realpathSync(main) === realpathSync(LAUNCHER);
  const execArgv = fromLauncher ? process.execArgv : FROM_SOURCES ? SOURCE_EXEC_ARGV : [];
  return { exec: LAUNCHER, args: [command, ...args], execArgv };
}

/** What every supervisor is given: when to stop, where to write, where to run. */
export interface SupervisorIO {
  stop: Promise<unknown>;
  stdout: Output;
  stderr: Output;
  cwd: string;
}

/** Runs a supervisor with a stop signal of its own, removed once it is done. */
export async function supervised(
  io: { stdout?: Output; stderr?: Output; signal?: AbortSignal; cwd?: string },
  run: (common: SupervisorIO) => Promise<number>,
): Promise<number> {
  const stop = stopSignal(io);
  try {
    return await run({
      stop: stop.stopped,
      stdout: io.stdout ?? process.stdout,
      stderr: io.stderr ?? process.stderr,
      cwd: io.cwd ?? process.cwd(),
    });
  } finally {
    stop.dispose();
  }
}
