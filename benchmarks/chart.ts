/**
 * A small SVG bar chart, rendered by hand (no dependency): horizontal bars, one row per label and one
 * bar per series in each row, the spread drawn as a whisker (min to max) over each bar, and a dashed
 * reference line (1 × raw).
 *
 * {@link loopbackChart} turns a loopback result into the chart the README shows: per target, server CPU
 * per request as a ratio to raw, averaged over the shapes (per round, then min/median/max over the
 * rounds), one bar per pipelining depth.
 */
import { machineLine } from './machine.ts';
import type { LoopbackResult } from './results.ts';
import { depthName } from './table.ts';

export interface ChartSeries {
  name: string;
  color: string;
}

/** One bar: its length is the median, its whisker runs from min to max. */
export interface ChartBar {
  median: number;
  min: number;
  max: number;
}

export interface ChartRow {
  label: string;
  /** One per series, in the series' order; undefined leaves that bar out. */
  bars: (ChartBar | undefined)[];
}

export interface ChartData {
  title: string;
  subtitle?: string;
  /** The axis caption under the bars. */
  axis: string;
  reference?: { value: number; label: string };
  series: ChartSeries[];
  rows: ChartRow[];
}

const WIDTH = 820;
const LABEL_WIDTH = 130;
const VALUE_WIDTH = 64;
const BAR_HEIGHT = 11;
const BAR_GAP = 3;
const ROW_GAP = 9;
const COLORS = ['#3b6fb6', '#e08a2c', '#4f9d69', '#b54a6a'];

/** Escapes text for an SVG text node or attribute. */
function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A tick step that gives about five to ten grid lines up to `max`. */
function tickStep(max: number): number {
  for (const step of [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50]) if (max / step <= 10) return step;
  return 100;
}

/**
 * Renders `data` as a standalone SVG document.
 *
 * @example
 * renderChart({
 *   title: 'CPU per request vs raw', axis: '× raw', series: [{ name: 'non-pipelined', color: '#3b6fb6' }],
 *   rows: [{ label: 'tsgi-10', bars: [{ median: 1.03, min: 1.01, max: 1.06 }] }],
 * });
 */
export function renderChart(data: ChartData): string {
  const top = data.subtitle ? 64 : 44;
  const legendHeight = 22;
  const perRow = data.series.length * BAR_HEIGHT + (data.series.length - 1) * BAR_GAP + ROW_GAP;
  // room under the legend for the reference line's label
  const plotTop = top + legendHeight + 14;
  const plotHeight = data.rows.length * perRow;
  const height = plotTop + plotHeight + 44;
  const x0 = LABEL_WIDTH;
  const x1 = WIDTH - VALUE_WIDTH;
  const values = data.rows.flatMap((row) => row.bars.flatMap((bar) => (bar ? [bar.max, bar.median] : [])));
  const step = tickStep(Math.max(1, ...values, data.reference?.value ?? 0));
  const scaleMax = Math.ceil(Math.max(1, ...values) / step) * step;
  const x = (value: number) => x0 + (Math.max(0, value) / scaleMax) * (x1 - x0);
  const fmt = (value: number) => (Math.round(value * 100) / 100).toFixed(2);
  const out: string[] = [];

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
  );
  // A title, for screen readers and for the tooltip of the chart as a whole.
  out.push(`<title>${escapeXml(data.title)}</title>`);
  out.push(`<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="12" y="24" font-size="16" font-weight="600" fill="#222">${escapeXml(data.title)}</text>`,
  );
  if (data.subtitle) out.push(`<text x="12" y="44" fill="#666">${escapeXml(data.subtitle)}</text>`);
  let legendX = x0;
  for (const [index, series] of data.series.entries()) {
    const color = series.color || COLORS[index % COLORS.length]!;
    out.push(`<rect x="${legendX}" y="${top}" width="12" height="12" fill="${color}"/>`);
    out.push(`<text x="${legendX + 17}" y="${top + 10}" fill="#333">${escapeXml(series.name)}</text>`);
    legendX += 30 + series.name.length * 7;
  }
  out.push(
    `<text x="${x1}" y="${top + 10}" text-anchor="end" fill="#666">whiskers: min–max over rounds</text>`,
  );

  for (let tick = 0; tick <= scaleMax + 1e-9; tick += step) {
    const tx = x(tick).toFixed(1);
    out.push(
      `<line x1="${tx}" y1="${plotTop - 4}" x2="${tx}" y2="${plotTop + plotHeight}" stroke="#e4e4e4"/>`,
    );
    out.push(
      `<text x="${tx}" y="${plotTop + plotHeight + 16}" text-anchor="middle" fill="#666">${escapeXml(String(Math.round(tick * 100) / 100))}</text>`,
    );
  }
  out.push(
    `<text x="${(x0 + x1) / 2}" y="${plotTop + plotHeight + 34}" text-anchor="middle" fill="#444">${escapeXml(data.axis)}</text>`,
  );

  for (const [rowIndex, row] of data.rows.entries()) {
    const rowTop = plotTop + rowIndex * perRow;
    const middle = rowTop + (perRow - ROW_GAP) / 2;
    out.push(
      `<text x="${x0 - 8}" y="${(middle + 4).toFixed(1)}" text-anchor="end" fill="#222">${escapeXml(row.label)}</text>`,
    );
    for (const [seriesIndex, bar] of row.bars.entries()) {
      if (bar === undefined) continue;
      const color = data.series[seriesIndex]?.color || COLORS[seriesIndex % COLORS.length]!;
      const y = rowTop + seriesIndex * (BAR_HEIGHT + BAR_GAP);
      const cy = (y + BAR_HEIGHT / 2).toFixed(1);
      out.push(
        `<rect class="bar" x="${x0}" y="${y}" width="${(x(bar.median) - x0).toFixed(1)}" height="${BAR_HEIGHT}" fill="${color}"><title>${escapeXml(`${row.label}, ${data.series[seriesIndex]?.name ?? ''}: ${fmt(bar.median)} (${fmt(bar.min)}–${fmt(bar.max)})`)}</title></rect>`,
      );
      const wx0 = x(bar.min).toFixed(1);
      const wx1 = x(bar.max).toFixed(1);
      out.push(
        `<g class="whisker" stroke="#222" stroke-width="1"><line x1="${wx0}" y1="${cy}" x2="${wx1}" y2="${cy}"/><line x1="${wx0}" y1="${y + 2}" x2="${wx0}" y2="${y + BAR_HEIGHT - 2}"/><line x1="${wx1}" y1="${y + 2}" x2="${wx1}" y2="${y + BAR_HEIGHT - 2}"/></g>`,
      );
      out.push(
        `<text x="${(x(Math.max(bar.max, bar.median)) + 5).toFixed(1)}" y="${(y + BAR_HEIGHT - 1).toFixed(1)}" font-size="10" fill="#333">${fmt(bar.median)}</text>`,
      );
    }
  }

  if (data.reference) {
    const rx = x(data.reference.value).toFixed(1);
    out.push(
      `<line x1="${rx}" y1="${plotTop - 4}" x2="${rx}" y2="${plotTop + plotHeight}" stroke="#c0392b" stroke-dasharray="4 3"/>`,
    );
    out.push(
      `<text x="${rx}" y="${plotTop - 8}" text-anchor="middle" fill="#c0392b">${escapeXml(data.reference.label)}</text>`,
    );
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/**
 * The README's chart from a loopback result: per target (raw left out: it is the reference line),
 * server CPU per request as a ratio to raw, averaged over the shapes, one bar per pipelining depth.
 *
 * @example
 * writeFileSync('chart.svg', renderChart(loopbackChart(readResult('loopback')!)));
 */
export function loopbackChart(result: LoopbackResult): ChartData {
  const { settings, summary } = result;
  const depths = settings.pipelining;
  return {
    title: `Server CPU per request, ratio to raw node:http (${settings.shapes.length === 1 ? settings.shapes[0] : `average of ${settings.shapes.length} shapes`})`,
    subtitle: `${machineLine(result.machine)}; ${settings.connections} connections, ${settings.rounds} rounds; ${result.machine.date.slice(0, 10)}`,
    axis: '× raw node:http CPU per request (lower is better)',
    reference: { value: 1, label: 'raw' },
    series: depths.map((pipelining, index) => ({
      name: depthName(pipelining).replace(/`/g, ''),
      color: COLORS[index % COLORS.length]!,
    })),
    rows: settings.targets
      .filter((target) => target !== summary.baseline)
      .map((target) => ({
        label: target,
        bars: depths.map((pipelining) => {
          const average = summary.averages.find((a) => a.target === target && a.pipelining === pipelining);
          return average
            ? { median: average.cpuRatio.median, min: average.cpuRatio.min, max: average.cpuRatio.max }
            : undefined;
        }),
      })),
  };
}
