/**
 * What `tsgi bench` prints: the table for a terminal, or with `--json` one JSON document holding the
 * same numbers, each named with its unit.
 *
 * Every row's time is the median of its samples, in µs per request; the spread shown is p25–p75. A
 * row's difference (`+µs`) is its median less the row above's: for a middleware, what adding that
 * layer under the ones above it costs; for `handler`, what createHandler adds to the bare
 * application; for `receivers`, what the site's signal receivers cost. The differences add up to the
 * total (the last row), so their shares of it add up to 100 %. Noise can make a small difference
 * negative: it is shown as measured.
 */
import type { MeasuredRow, Measurement } from './bench-run.ts';
import type { Timing } from './bench-sample.ts';

/** A finished bench run and what it was run on. */
export interface BenchReport {
  /** What was benched, as the command line named it. */
  target: string;
  /** `handler`: a handler's own parts; `settings`: APP and MIDDLEWARE; `application`: a plain one. */
  kind: 'handler' | 'settings' | 'application';
  request: Request;
  measurement: Measurement;
  timePerRowMs: number;
  fastResponse: boolean;
  /** Things the reader must know to read the numbers right (one sentence each). */
  notes: string[];
}

interface Priced {
  row: MeasuredRow;
  diffUs: number;
  share: number;
}

/** Each row with its difference from the row above and its share of the total. */
function priced(rows: MeasuredRow[]): { rows: Priced[]; totalUs: number } {
  const totalUs = rows.at(-1)!.timing.medianUs;
  let above = 0;
  return {
    totalUs,
    rows: rows.map((row) => {
      const diffUs = row.timing.medianUs - above;
      above = row.timing.medianUs;
      return { row, diffUs, share: diffUs / totalUs };
    }),
  };
}

/**
 * The run as one JSON document (with a trailing newline).
 *
 * @example
 * JSON.parse(benchJson(report)).rows.filter((row) => row.kind === 'layer').map((row) => row.name);
 */
export function benchJson(report: BenchReport): string {
  const { rows, totalUs } = priced(report.measurement.rows);
  const bare = report.measurement.rows[0]!.timing.medianUs;
  const { pathname, search } = new URL(report.request.url);
  const document = {
    target: report.target,
    stack: report.kind,
    request: {
      method: report.request.method,
      path: pathname + search,
      headers: Object.fromEntries(report.request.headers),
    },
    response: { status: report.measurement.status, bytes: report.measurement.bytes },
    units: {
      time: 'µs per request (wall clock, in process, no sockets)',
      diffUs: 'µs per request added by the row, against the row above',
      share: 'fraction of the total',
      timePerRow: 's',
    },
    timePerRow: report.timePerRowMs / 1000,
    fastResponse: report.fastResponse,
    rows: rows.map(({ row, diffUs, share }) => ({
      kind: row.kind,
      name: row.label,
      ...(row.index === undefined ? {} : { index: row.index }),
      ...row.timing,
      diffUs,
      share,
    })),
    receivers: { count: report.measurement.receivers },
    total: { medianUs: totalUs, timesBare: totalUs / bare },
    notes: report.notes,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/**
 * The run as a table for a terminal.
 *
 * @example
 * // bare application      2.41    2.38–2.45    2.41   41.0 %
 * // 1 loggingMiddleware   4.90    4.85–5.01   +1.88   32.0 %
 */
export function benchTable(report: BenchReport): string {
  const { measurement, request } = report;
  const { rows, totalUs } = priced(measurement.rows);
  const bare = measurement.rows[0]!.timing.medianUs;
  const { pathname, search } = new URL(request.url);
  const samples = measurement.rows.map((row) => row.timing.samples);
  const lines = [
    `tsgi bench: ${request.method} ${pathname}${search} on ${report.target} → ${measurement.status}, ${measurement.bytes} bytes`,
    `µs per request, in process (no sockets): median and p25–p75 of ${range(samples)} samples per row, ${seconds(report.timePerRowMs)} s per row`,
    '',
  ];
  const table: string[][] = [['', 'µs/request', 'p25–p75', '+µs', 'share']];
  for (const { row, diffUs, share } of rows) {
    table.push([
      name(row, measurement.receivers),
      us(row.timing.medianUs),
      spread(row.timing),
      row.kind === 'application' ? us(diffUs) : signed(diffUs),
      percent(share),
    ]);
  }
  table.push([
    'total',
    us(totalUs),
    '',
    '',
    percent(1),
    `${(totalUs / bare).toFixed(2)} × the bare application`,
  ]);
  const widths = table[0]!.map((_, column) =>
    Math.max(...table.map((cells) => (cells[column] ?? '').length)),
  );
  for (const cells of table) {
    const text = cells
      .map((cell, column) =>
        column === 0 || column === 5 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('   ');
    lines.push(text.trimEnd());
  }
  lines.push(
    '',
    `Each middleware row is the handler with the layers from the first down to that one (outermost first);`,
    `+µs is what a row adds to the row above. receivers: the whole stack on the site's bus, its receivers connected.`,
  );
  for (const note of report.notes) lines.push(`note: ${note}`);
  return `${lines.join('\n')}\n`;
}

function name(row: MeasuredRow, receivers: number): string {
  if (row.kind === 'layer') return `${row.index} ${row.label}`;
  if (row.kind === 'receivers') return `receivers (${receivers})`;
  return row.label;
}

function us(value: number): string {
  const size = Math.abs(value);
  return value.toFixed(size >= 100 ? 0 : size >= 10 ? 1 : 2);
}

function signed(value: number): string {
  return value < 0 ? `-${us(-value)}` : `+${us(value)}`;
}

function spread(timing: Timing): string {
  return `${us(timing.p25Us)}–${us(timing.p75Us)}`;
}

function percent(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

function range(values: number[]): string {
  const low = Math.min(...values);
  const high = Math.max(...values);
  return low === high ? String(low) : `${low}–${high}`;
}

function seconds(ms: number): string {
  return String(Number((ms / 1000).toFixed(3)));
}
