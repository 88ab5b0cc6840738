/**
 * What a result file records about where it came from: the CPU, the cores, the memory, the OS, the
 * Node version, the commit of tsgi that ran, and the version of every peer framework — because a
 * ratio means little without the machine and the versions it was taken with.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGB: number;
  os: string;
  node: string;
  /** `git describe`-like: the commit, with `-dirty` when the checkout had changes. */
  commit: string;
  date: string;
  /** npm package → installed version, for the packages asked about. */
  versions: Record<string, string>;
}

const ROOT = new URL('../', import.meta.url);

/**
 * Describes this machine and the installed versions of `packages`.
 *
 * @example
 * describeMachine(['fastify', 'hono']).versions; // { fastify: '5.12.8', hono: '4.13.19' }
 */
export function describeMachine(packages: readonly string[]): Machine {
  const versions: Record<string, string> = {};
  for (const name of packages) versions[name] = installedVersion(name);
  const commit = run('git', ['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    // not availableParallelism(): the driver pins itself to one CPU before it asks
    cores: os.cpus().length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    commit: dirty ? `${commit}-dirty` : commit,
    date: new Date().toISOString(),
    versions,
  };
}

/** The version in node_modules/<name>/package.json (read as a file: not every package exports it). */
export function installedVersion(name: string): string {
  try {
    const manifest = JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, ROOT), 'utf8'));
    return String(manifest.version);
  } catch {
    return 'not installed';
  }
}

/**
 * One line for a table caption: `AMD EPYC, 2 cores, 24 GB, Linux 6.1 x64, Node v20.20.2`.
 *
 * @example
 * machineLine(describeMachine([]));
 */
export function machineLine(machine: Machine): string {
  return `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, ${machine.os}, Node ${machine.node}`;
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}
