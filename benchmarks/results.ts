/**
 * The result files in benchmarks/results/: what each holds, and reading and writing them.
 *
 * `loopback.json` (or `<name>.json` for a `--name`d or `--quick` run) holds every measured window and
 * the summary computed from them; `in-process.json` the in-process suite's timings. Each records the
 * machine and the settings it was taken with. The chart and the table are rendered from these files
 * (`npm run bench:report`), so a run can be re-rendered without re-measuring.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Machine } from './machine.ts';
import type { Sample, Spread, Summary } from './stats.ts';

export const RESULTS_DIR = new URL('./results/', import.meta.url);

export interface LoopbackSettings {
  rounds: number;
  warmup: number;
  duration: number;
  connections: number;
  pipelining: number[];
  targets: string[];
  shapes: string[];
  /** The CPU lists the server and the load generator were pinned to, or undefined when unpinned. */
  pinned: { server: string; load: string } | undefined;
  quick: boolean;
}

export interface LoopbackResult {
  kind: 'loopback';
  machine: Machine;
  settings: LoopbackSettings;
  /** Wall-clock seconds the whole run took, server start-up included. */
  wallSeconds: number;
  samples: Sample[];
  summary: Summary;
}

export interface InProcessSettings {
  layers: number[];
  rounds: number;
  quick: boolean;
}

/** One chain at one layer count: nanoseconds per call, each round's figure mitata's p50. */
export interface ChainTiming {
  chain: string;
  layers: number;
  /** Each round's figure, in round order. */
  rounds: number[];
  nanoseconds: Spread;
}

/**
 * A chain's cost per added layer: the least-squares slope, against the layer count, of each layer
 * count's fastest round (on a shared machine a slow round is another process's doing, not the code's).
 */
export interface LayerCost {
  chain: string;
  nanosecondsPerLayer: number;
  /** The slope of each round alone: how firm the figure is. */
  spread: Spread;
}

export interface InProcessResult {
  kind: 'in-process';
  machine: Machine;
  settings: InProcessSettings;
  wallSeconds: number;
  timings: ChainTiming[];
  perLayer: LayerCost[];
}

/** Writes `results/<name>.json` and returns its path. */
export function writeResult(name: string, result: LoopbackResult | InProcessResult): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const url = new URL(`${name}.json`, RESULTS_DIR);
  writeFileSync(url, `${stringify(result, '')}\n`);
  return url.pathname;
}

/**
 * JSON with objects laid out one key a line, but each element of a list of objects (a sample, a
 * cell) on one line: a third of the size of fully indented JSON, and a diff shows which windows moved.
 */
function stringify(value: unknown, indent: string): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value, sixDigits);
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (!value.some((item) => item !== null && typeof item === 'object'))
      return JSON.stringify(value, sixDigits);
    return `[\n${value.map((item) => `${inner}${JSON.stringify(item, sixDigits)}`).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value).filter(([, item]) => item !== undefined);
  return `{\n${entries.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${stringify(item, inner)}`).join(',\n')}\n${indent}}`;
}

/** Reads `results/<name>.json`, or undefined when there is none. */
export function readResult<T extends LoopbackResult | InProcessResult>(name: string): T | undefined {
  try {
    return JSON.parse(readFileSync(new URL(`${name}.json`, RESULTS_DIR), 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Six significant digits are more than any figure here is worth (and a tenth of the bytes of 17). */
function sixDigits(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isInteger(value) ? Number(value.toPrecision(6)) : value;
}
