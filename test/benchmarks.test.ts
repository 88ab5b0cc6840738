/**
 * The benchmark suite's pieces that can be checked without timing anything: the maths of ratios and
 * spreads, the tables, the chart (valid SVG, one bar per entry), the progress output, the target
 * names, and — over real sockets — that every target's server answers every shape the same way and
 * reports its CPU and request count over IPC. No assertion here depends on how fast anything runs.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type ChartData, loopbackChart, renderChart } from '../benchmarks/chart.ts';
import { ServerProcess } from '../benchmarks/loopback/launch.ts';
import { checkAnswer, EXPECTED, requestAnswer, SHAPES } from '../benchmarks/loopback/shapes.ts';
import { DEFAULT_TARGETS, parseTarget, UnknownTargetError } from '../benchmarks/loopback/targets.ts';
import { describeMachine } from '../benchmarks/machine.ts';
import { formatDuration, Progress } from '../benchmarks/progress.ts';
import type { LoopbackResult } from '../benchmarks/results.ts';
import {
  geometricMean,
  MissingBaselineError,
  median,
  type Sample,
  slope,
  spread,
  summarize,
} from '../benchmarks/stats.ts';
import { formatSpread, renderLoopbackTables } from '../benchmarks/table.ts';

/** A sample with `cpu` µs per request and `rps` requests per second (1000 requests). */
function sample(
  round: number,
  target: string,
  shape: string,
  cpu: number,
  rps: number,
  pipelining = 1,
): Sample {
  return {
    round,
    target,
    shape,
    pipelining,
    requests: 1000,
    responses: 1000,
    seconds: 1000 / rps,
    cpuMicros: cpu * 1000,
  };
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;

/**
 * Checks that `text` is well-formed XML as far as an SVG file needs: every tag closed in order, one
 * root element, attribute values quoted, no stray `<` or `&` in text. Returns the problems found.
 */
function xmlProblems(text: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g;
  let last = 0;
  for (let match = tag.exec(text); match !== null; match = tag.exec(text)) {
    const between = text.slice(last, match.index);
    if (/[<]|&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(between)) problems.push(`bad text before ${match[0]}`);
    last = tag.lastIndex;
    if (match[2] === undefined) continue;
    const [, closing, name, , selfClosing] = match;
    if (closing) {
      if (stack.pop() !== name) problems.push(`</${name}> closes nothing open`);
    } else if (!selfClosing) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) {
      roots++;
    }
  }
  if (/</.test(text.slice(last))) problems.push('a tag that is not well-formed');
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(', ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}

describe('the statistics', () => {
  it('takes the median of odd and even counts', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  it('refuses the median of nothing, naming the likely cause', () => {
    assert.throws(() => median([]), /no round measured/);
  });

  it('gives min, median and max as a spread', () => {
    assert.deepEqual(spread([1.05, 0.98, 1.02]), { min: 0.98, median: 1.02, max: 1.05, n: 3 });
  });

  it('averages ratios geometrically, so 0.5 × and 2 × cancel', () => {
    assert.ok(close(geometricMean([0.5, 2]), 1));
    assert.ok(close(geometricMean([2, 8]), 4));
  });

  it('fits the slope of a line through the points', () => {
    assert.ok(close(slope([0, 1, 5, 10, 50], [100, 120, 200, 300, 1100]), 20));
  });

  describe('summarize()', () => {
    // raw drifts from round to round (10 µs, then 20 µs); tsgi is always 1.1 × raw in its round
    const samples = [
      sample(1, 'raw', 'json', 10, 50_000),
      sample(1, 'tsgi-10', 'json', 11, 40_000),
      sample(2, 'raw', 'json', 20, 25_000),
      sample(2, 'tsgi-10', 'json', 22, 20_000),
      sample(3, 'raw', 'json', 10, 50_000),
      sample(3, 'tsgi-10', 'json', 12, 50_000),
      sample(1, 'raw', 'text', 10, 50_000),
      sample(1, 'tsgi-10', 'text', 10, 50_000),
    ];
    const summary = summarize(samples, 'raw');
    const json = summary.cells.find((cell) => cell.target === 'tsgi-10' && cell.shape === 'json')!;

    it('takes each ratio against the baseline of the same round, so drift between rounds cancels', () => {
      assert.ok(close(json.cpuRatio.min, 1.1));
      assert.ok(close(json.cpuRatio.median, 1.1));
      assert.ok(close(json.cpuRatio.max, 1.2));
      assert.equal(json.cpuRatio.n, 3);
    });

    it('gives req/s ratios from the responses over the window', () => {
      assert.ok(close(json.rpsRatio.median, 0.8));
      assert.ok(close(json.rpsRatio.max, 1));
    });

    it('keeps the absolute figures too', () => {
      assert.ok(close(json.cpuPerRequest.median, 12));
      assert.ok(close(json.requestsPerSecond.min, 20_000));
    });

    it('gives the baseline a ratio of 1 to itself', () => {
      const raw = summary.cells.find((cell) => cell.target === 'raw' && cell.shape === 'json')!;
      assert.deepEqual([raw.cpuRatio.min, raw.cpuRatio.max], [1, 1]);
    });

    it('averages over the shapes within each round, then spreads over the rounds', () => {
      const average = summary.averages.find((a) => a.target === 'tsgi-10' && a.pipelining === 1)!;
      // round 1: sqrt(1.1 × 1.0); rounds 2 and 3 measured json only: 1.1 and 1.2
      assert.equal(average.cpuRatio.n, 3);
      assert.ok(close(average.cpuRatio.min, Math.sqrt(1.1)));
      assert.ok(close(average.cpuRatio.max, 1.2));
    });

    it('refuses samples without the baseline', () => {
      assert.throws(
        () => summarize([sample(1, 'tsgi-10', 'json', 11, 1)], 'raw'),
        (error: unknown) => error instanceof MissingBaselineError && /baseline "raw"/.test(error.message),
      );
    });
  });
});

describe('the tables', () => {
  it('write a spread as median (min–max), and a single figure alone', () => {
    assert.equal(formatSpread({ min: 0.981, median: 1.02, max: 1.049, n: 3 }), '1.02 (0.98–1.05)');
    assert.equal(formatSpread({ min: 1.02, median: 1.02, max: 1.02, n: 1 }), '1.02');
  });

  it('list every target and shape, raw first with its own figures', () => {
    const samples = ['text', 'json'].flatMap((shape) =>
      [1, 2].flatMap((round) => [
        sample(round, 'raw', shape, 10, 50_000),
        sample(round, 'tsgi-10', shape, 10.5, 48_000),
      ]),
    );
    const result: LoopbackResult = {
      kind: 'loopback',
      machine: describeMachine([]),
      settings: {
        rounds: 2,
        warmup: 0.1,
        duration: 0.1,
        connections: 50,
        pipelining: [1],
        targets: ['raw', 'tsgi-10'],
        shapes: ['text', 'json'],
        pinned: undefined,
        quick: true,
      },
      wallSeconds: 1,
      samples,
      summary: summarize(samples, 'raw'),
    };
    const tables = renderLoopbackTables(result);
    assert.match(tables, /\| raw \(µs\/req\) \| 10\.00 \| 10\.00 \| 1 \|/);
    assert.match(
      tables,
      /\| tsgi-10 \| 1\.05 \(1\.05–1\.05\) \| 1\.05 \(1\.05–1\.05\) \| \*\*1\.05 \(1\.05–1\.05\)\*\* \|/,
    );
    assert.match(tables, /\| raw \(req\/s\) \| 50000 \| 50000 \| 1 \|/);

    const chart = loopbackChart(result);
    assert.deepEqual(
      chart.rows.map((row) => row.label),
      ['tsgi-10'],
    );
    assert.equal(xmlProblems(renderChart(chart)).length, 0);
  });
});

describe('the chart', () => {
  const data: ChartData = {
    title: 'CPU per request <vs> raw & co',
    subtitle: 'AMD "EPYC"',
    axis: '× raw',
    reference: { value: 1, label: 'raw' },
    series: [
      { name: 'non-pipelined', color: '#3b6fb6' },
      { name: 'pipelined -p 10', color: '#e08a2c' },
    ],
    rows: [
      {
        label: 'tsgi-10',
        bars: [
          { median: 1.03, min: 1.01, max: 1.06 },
          { median: 1.1, min: 1.0, max: 1.2 },
        ],
      },
      { label: 'express-10', bars: [{ median: 3.4, min: 3.1, max: 3.9 }, undefined] },
      {
        label: 'koa-0',
        bars: [
          { median: 1.8, min: 1.7, max: 1.9 },
          { median: 2, min: 1.9, max: 2.2 },
        ],
      },
    ],
  };
  const svg = renderChart(data);

  it('is a well-formed SVG document', () => {
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.deepEqual(xmlProblems(svg), []);
  });

  it('draws one bar and one whisker per entry, leaving out missing ones', () => {
    assert.equal(svg.match(/<rect class="bar"/g)?.length, 5);
    assert.equal(svg.match(/<g class="whisker"/g)?.length, 5);
  });

  it('labels every row and escapes text', () => {
    for (const row of data.rows) assert.ok(svg.includes(`>${row.label}<`));
    assert.ok(svg.includes('CPU per request &lt;vs&gt; raw &amp; co'));
    assert.ok(svg.includes('AMD &quot;EPYC&quot;'));
  });

  it('scales bars to their medians', () => {
    const widths = [...svg.matchAll(/<rect class="bar" x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g)].map((m) =>
      Number(m[1]),
    );
    // express-10's 3.4 is the longest bar; tsgi-10's 1.03 about 0.3 of it
    assert.equal(Math.max(...widths), widths[2]);
    assert.ok(Math.abs(widths[0]! / widths[2]! - 1.03 / 3.4) < 0.01);
  });
});

describe('the progress output', () => {
  function capture(): { stream: NodeJS.WriteStream; text: () => string } {
    let text = '';
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        text += String(chunk);
        callback();
      },
    }) as unknown as NodeJS.WriteStream;
    return { stream, text: () => text };
  }

  it('writes plain lines, no escape codes, when the stream is not a terminal', () => {
    const { stream, text } = capture();
    const progress = new Progress(2, 'loopback', stream);
    progress.doing('raw json');
    progress.done('raw json: 1 req/s');
    progress.done('tsgi-10 json: 1 req/s');
    progress.finish();
    const lines = text().trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^\[loopback 1\/2 .*\] raw json: 1 req\/s$/);
    assert.match(lines[2]!, /^loopback: 2 steps in /);
    assert.ok(!text().includes('\x1b'));
  });

  it('formats durations as seconds, then minutes and seconds', () => {
    assert.equal(formatDuration(42), '42s');
    assert.equal(formatDuration(187), '3m07s');
  });
});

describe('the target names', () => {
  it('read a framework and a layer count', () => {
    assert.deepEqual(parseTarget('express-10'), {
      name: 'express-10',
      framework: 'express',
      layers: 10,
      fastResponse: true,
      contentLength: false,
    });
    assert.equal(parseTarget('tsgi-10-undici').fastResponse, false);
    assert.equal(parseTarget('raw-length').contentLength, true);
    assert.equal(parseTarget('tsgi-50').layers, 50);
  });

  it('refuse an unknown framework with the names that would work', () => {
    assert.throws(
      () => parseTarget('flask-10'),
      (error: unknown) => error instanceof UnknownTargetError && /for example tsgi-10/.test(error.message),
    );
    assert.throws(() => parseTarget('koa-10-undici'), UnknownTargetError);
    assert.equal(parseTarget('srvx-10-undici').fastResponse, false);
  });
});

describe('checkAnswer()', () => {
  const right = { status: 200, body: 'Hello World', contentType: 'text/plain; charset=utf-8', setCookie: [] };

  it('accepts a framework’s own charset and cookie letter case', () => {
    assert.deepEqual(checkAnswer('text', right), []);
    assert.deepEqual(
      checkAnswer('cookies', {
        ...right,
        setCookie: ['theme=dark; path=/', 'session=abc123; path=/; httponly'],
      }),
      [],
    );
  });

  it('names every difference', () => {
    const problems = checkAnswer('cookies', {
      status: 500,
      body: 'oops',
      contentType: 'text/html',
      setCookie: [],
    });
    assert.equal(problems.length, 4);
    assert.match(problems.join('\n'), /status is 500, expected 200/);
    assert.match(problems.join('\n'), /content-type is text\/html, expected text\/plain/);
  });
});

describe('every target’s server, over a real socket', () => {
  const targets = [...DEFAULT_TARGETS, 'raw-length', 'srvx-10-undici'];
  const servers = new Map<string, ServerProcess>();

  before(async () => {
    // a few at a time: each is a Node process loading its framework through tsx
    for (let i = 0; i < targets.length; i += 4) {
      const batch = targets.slice(i, i + 4);
      const started = await Promise.all(batch.map((target) => ServerProcess.launch(target)));
      for (const server of started) servers.set(server.target, server);
    }
  });

  after(async () => {
    await Promise.all([...servers.values()].map((server) => server.stop()));
  });

  for (const target of targets) {
    it(`${target} answers every shape with the right status, headers and body`, async () => {
      const server = servers.get(target)!;
      for (const shape of SHAPES) {
        const answer = await requestAnswer(server.port, shape);
        assert.deepEqual(checkAnswer(shape, answer), [], `${target} ${shape}`);
        assert.equal(answer.status, EXPECTED[shape].status);
      }
    });
  }

  it('raw-length frames every answer with a Content-Length', async () => {
    const server = servers.get('raw-length')!;
    const { get } = await import('node:http');
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      get({ host: '127.0.0.1', port: server.port, path: '/bare', agent: false }, (response) => {
        response.resume();
        response.on('end', () => resolve(response.headers));
      }).on('error', reject);
    });
    assert.equal(headers['content-length'], '11');
  });

  it('reports the CPU it used and the requests it received between begin() and end()', async () => {
    const server = servers.get('tsgi-10')!;
    await server.begin();
    for (let i = 0; i < 3; i++) await requestAnswer(server.port, 'json');
    const { micros, requests } = await server.end();
    assert.equal(requests, 3);
    assert.ok(micros > 0);
  });

  it('a tsgi target stops cleanly after serving every shape, its signals balanced', async () => {
    // stop() rejects when the server exits non-zero, which a tsgi target does when a request_started
    // had no request_finished
    const server = await ServerProcess.launch('tsgi-0');
    for (const shape of SHAPES) await requestAnswer(server.port, shape);
    await server.stop();
  });
});

describe('ServerProcess.launch()', () => {
  it('rejects with the target’s error when the server cannot start', async () => {
    await assert.rejects(
      ServerProcess.launch('flask-10'),
      /flask-10: the server did not start: .*unknown target/,
    );
  });
});
