import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MIN_SAMPLES } from '../cli/bench-sample.ts';
import { main } from '../cli/main.ts';
import { stackOf } from '../src/host.ts';
import { type Application, createHandler, type Middleware, SignalBus } from '../src/index.ts';
import { expected, finished, layered } from './fixtures/bench-site.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const launcher = join(repo, 'cli/tsgi.ts');
const site = join(repo, 'test/fixtures/bench-site.ts');
const mysite = join(repo, 'examples/mysite');
// Short rows: the tests check what is printed, never how fast anything is.
const QUICK = ['--time', '0.02'];

interface Row {
  kind: 'application' | 'handler' | 'layer' | 'receivers';
  name: string;
  index?: number;
  medianUs: number;
  p25Us: number;
  p75Us: number;
  minUs: number;
  maxUs: number;
  samples: number;
  requests: number;
  diffUs: number;
  share: number;
}

interface Document {
  target: string;
  stack: 'handler' | 'settings' | 'application';
  request: { method: string; path: string; headers: Record<string, string> };
  response: { status: number; bytes: number };
  units: Record<string, string>;
  timePerRow: number;
  fastResponse: boolean;
  rows: Row[];
  receivers: { count: number };
  total: { medianUs: number; timesBare: number };
  notes: string[];
}

/** An output that keeps what is written. */
function capture() {
  const output = {
    text: '',
    write(text: string) {
      output.text += text;
    },
  };
  return output;
}

/** Runs `tsgi bench args` in this process. */
async function bench(args: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await main(['bench', ...args], { stdout, stderr, env: {} });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Runs the `tsgi` launcher from source, as a user runs it, to the end. */
function spawned(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', launcher, ...args], {
    cwd: repo,
    env: { ...process.env, TSGI_SETTINGS_MODULE: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

function assertMeasured(row: Row): void {
  for (const field of ['medianUs', 'p25Us', 'p75Us', 'minUs', 'maxUs'] as const) {
    assert.ok(Number.isFinite(row[field]) && row[field] > 0, `${row.name}: ${field} is ${row[field]}`);
  }
  assert.ok(row.minUs <= row.p25Us && row.p25Us <= row.medianUs, `${row.name}: quantiles in order`);
  assert.ok(row.medianUs <= row.p75Us && row.p75Us <= row.maxUs, `${row.name}: quantiles in order`);
  assert.ok(row.samples >= MIN_SAMPLES, `${row.name}: ${row.samples} samples`);
  assert.ok(row.requests >= row.samples, `${row.name}: ${row.requests} requests`);
  assert.ok(Number.isFinite(row.diffUs) && Number.isFinite(row.share), `${row.name}: difference and share`);
}

describe('stackOf', () => {
  it('gives the parts a handler was built from', () => {
    const bus = new SignalBus();
    const app = () => new Response('ok');
    const layer: Middleware = (next) => next;
    const handler = createHandler(app, { middleware: [layer], signals: bus, debug: true });
    const stack = stackOf(handler);
    assert.equal(stack?.application, app);
    assert.deepEqual(stack?.middleware, [layer]);
    assert.equal(stack?.signals, bus);
    assert.equal(stack?.debug, true);
  });

  it('keeps the middleware list as it was when the handler was made', () => {
    const list: Middleware[] = [(next) => next];
    const handler = createHandler(() => new Response('ok'), { middleware: list });
    list.push((next) => next);
    assert.equal(stackOf(handler)?.middleware.length, 1);
  });

  it('is undefined for a plain application and for a handler wrapped by hand', () => {
    const app: Application = () => new Response('ok');
    const handler = createHandler(app);
    const wrapped: Application = (request, context) => handler(request, context);
    assert.equal(stackOf(app), undefined);
    assert.equal(stackOf(wrapped), undefined);
    assert.equal(stackOf({ fetch: app }), undefined);
  });
});

describe('tsgi bench on a handler', () => {
  let document: Document;
  before(async () => {
    const { code, stdout, stderr } = await bench([`${site}:layered`, '--json', ...QUICK]);
    assert.equal(stderr, '');
    assert.equal(code, 0);
    document = JSON.parse(stdout) as Document;
  });

  it('prints one JSON document that says what it measured and in which units', () => {
    assert.equal(document.target, `${site}:layered`);
    assert.equal(document.stack, 'handler');
    assert.deepEqual(document.request, { method: 'GET', path: '/', headers: {} });
    assert.deepEqual(document.response, { status: 200, bytes: 'hello from the bench fixture'.length });
    assert.match(document.units.time!, /µs per request/);
    assert.equal(document.timePerRow, 0.02);
    assert.equal(document.fastResponse, true);
  });

  it('has the bare application, the handler, one row per layer in order, and the receivers', () => {
    const names = stackOf(layered)!.middleware.map((layer, at) => layer.name || `#${at + 1}`);
    assert.deepEqual(names, ['passThrough', 'tagged', '#3']);
    assert.deepEqual(
      document.rows.map((row) => row.kind),
      ['application', 'handler', 'layer', 'layer', 'layer', 'receivers'],
    );
    const layers = document.rows.filter((row) => row.kind === 'layer');
    assert.deepEqual(
      layers.map((row) => row.name),
      names,
    );
    assert.deepEqual(
      layers.map((row) => row.index),
      [1, 2, 3],
    );
    assert.equal(document.receivers.count, 1);
  });

  it('gives every row finite, positive times from enough samples', () => {
    for (const row of document.rows) assertMeasured(row);
  });

  it('prices each row against the one above, so the shares add up to the total', () => {
    const rows = document.rows;
    assert.equal(rows[0]!.diffUs, rows[0]!.medianUs);
    for (let at = 1; at < rows.length; at++) {
      assert.ok(Math.abs(rows[at]!.diffUs - (rows[at]!.medianUs - rows[at - 1]!.medianUs)) < 1e-9);
    }
    assert.equal(document.total.medianUs, rows.at(-1)!.medianUs);
    const shares = rows.reduce((sum, row) => sum + row.share, 0);
    assert.ok(Math.abs(shares - 1) < 1e-9, `shares add up to ${shares}`);
    assert.ok(Number.isFinite(document.total.timesBare) && document.total.timesBare > 0);
  });

  it("runs the site's receivers in the receivers row", async () => {
    const before = finished.count;
    assert.equal((await bench([`${site}:layered`, '--json', ...QUICK])).code, 0);
    assert.ok(finished.count > before);
  });

  it('prints a table with a row per layer, the receivers and the total', async () => {
    const { code, stdout } = await bench([`${site}:layered`, ...QUICK]);
    assert.equal(code, 0);
    assert.match(stdout, /^tsgi bench: GET \/ on .*bench-site\.ts:layered → 200, 28 bytes$/m);
    for (const name of [
      'bare application',
      'handler',
      '1 passThrough',
      '2 tagged',
      '3 #3',
      'receivers \\(1\\)',
    ]) {
      assert.match(stdout, new RegExp(`^${name} +\\d+\\.?\\d* +\\d`, 'm'), `a row for ${name}`);
    }
    assert.match(stdout, /^total +\d+\.?\d* +100\.0 % +\d+\.\d\d × the bare application$/m);
  });

  it('benches a plain application as one layer-less application and says so', async () => {
    const { code, stdout } = await bench([`${site}:plain`, '--json', ...QUICK]);
    assert.equal(code, 0);
    const document = JSON.parse(stdout) as Document;
    assert.equal(document.stack, 'application');
    assert.deepEqual(
      document.rows.map((row) => row.kind),
      ['application', 'handler', 'receivers'],
    );
    assert.match(document.notes.join('\n'), /exports a plain application, not a handler/);
  });
});

describe('tsgi bench --method, --path and --header', () => {
  after(() => {
    expected.echo = undefined;
  });

  it('reach the application', async () => {
    expected.echo = 'POST example.test/things?page=2 yes';
    const args = [
      '-X',
      'POST',
      '--path',
      '/things?page=2',
      '--header',
      'x-bench: yes',
      '-H',
      'host:example.test',
    ];
    const { code, stdout, stderr } = await bench([`${site}:echo`, '--json', ...args, ...QUICK]);
    assert.equal(stderr, '');
    assert.equal(code, 0);
    const document = JSON.parse(stdout) as Document;
    assert.deepEqual(document.request, {
      method: 'POST',
      path: '/things?page=2',
      headers: { host: 'example.test', 'x-bench': 'yes' },
    });
  });

  it('default to GET / with no headers on 127.0.0.1', async () => {
    expected.echo = 'GET 127.0.0.1/ null';
    assert.equal((await bench([`${site}:echo`, ...QUICK])).code, 0);
  });

  it('HEAD reads no body', async () => {
    expected.echo = 'HEAD 127.0.0.1/ null';
    const { code, stdout } = await bench([`${site}:echo`, '--json', '--method', 'HEAD', ...QUICK]);
    assert.equal(code, 0);
    assert.deepEqual((JSON.parse(stdout) as Document).response, { status: 200, bytes: 0 });
  });
});

describe('tsgi bench when the site fails', () => {
  after(() => {
    expected.echo = undefined;
  });

  const cases: [string, string[], RegExp][] = [
    [
      'the application throws',
      [`${site}:throwing`],
      /^tsgi: bench: the application threw on GET \/: Error: the fixture application always fails\n$/,
    ],
    [
      'a middleware throws',
      [`${site}:brokenLayer`],
      /^tsgi: bench: GET \/ got a 500 from middleware #2 \(explode\): Error: explode\(\) always fails — bench a request the site answers without a server error/,
    ],
    [
      'a receiver throws',
      [`${site}:brokenReceiver`],
      /^tsgi: bench: a request_finished receiver on the site's bus failed on GET \/: ReceiverError: .*countsWrong/,
    ],
    [
      'a layer answers 500',
      [`${site}:echo`, '--path', '/wrong'],
      /^tsgi: bench: GET \/wrong got a 500 from middleware #1 \(expectEcho\) — bench a request/,
    ],
  ];
  for (const [situation, args, message] of cases) {
    it(`stops with one line naming the layer and exit 1 when ${situation}`, async () => {
      expected.echo = 'GET 127.0.0.1/ null';
      const { code, stdout, stderr } = await bench([...args, ...QUICK]);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.match(stderr, message);
      assert.equal(stderr.split('\n').length, 2, `one line:\n${stderr}`);
    });
  }

  it('prints the stack of what the site threw with --verbose', async () => {
    const { code, stderr } = await bench([`${site}:throwing`, '--verbose', ...QUICK]);
    assert.equal(code, 1);
    assert.match(stderr, /^tsgi: bench: the application threw/);
    assert.match(stderr, /\n\s+at throwing .*bench-site\.ts:\d+/);
  });
});

describe('tsgi bench on a bad command line', () => {
  const cases: [string, string[], RegExp][] = [
    [
      'an unknown flag',
      [`${site}:plain`, '--frob'],
      /^tsgi: unknown option '--frob' \(run 'tsgi --help' for usage\)\n$/,
    ],
    ['no site', [], /^tsgi: bench needs the site to measure: .*\(run 'tsgi --help'/],
    ['two sites', [`${site}:plain`, `${site}:echo`], /^tsgi: unexpected argument /],
    ['a --time of 0', [`${site}:plain`, '--time', '0'], /^tsgi: --time must be more than 0 seconds/],
    [
      'a --time that is no number',
      [`${site}:plain`, '--time', 'soon'],
      /^tsgi: --time must be a number of seconds/,
    ],
    [
      'a --header without a colon',
      [`${site}:plain`, '-H', 'x-bench'],
      /^tsgi: --header: 'x-bench' is not NAME:VALUE/,
    ],
    [
      'a --path without its slash',
      [`${site}:plain`, '--path', 'things'],
      /^tsgi: --path must start with '\/'/,
    ],
    [
      'a --method that is not a token',
      [`${site}:plain`, '-X', 'GET /'],
      /^tsgi: --method: 'GET \/' is not an HTTP method/,
    ],
    ['a --method fetch forbids', [`${site}:plain`, '-X', 'CONNECT'], /^tsgi: --method CONNECT: /],
    ['a value missing', [`${site}:plain`, '--path'], /^tsgi: --path needs a value/],
  ];
  for (const [situation, args, message] of cases) {
    it(`prints one line with a --help hint and exits 2 for ${situation}`, async () => {
      const { code, stdout, stderr } = await bench(args);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.match(stderr, message);
      assert.match(stderr, /\(run 'tsgi --help' for usage\)\n$/);
      assert.equal(stderr.split('\n').length, 2);
    });
  }

  it('names a site module that does not exist, exit 1', async () => {
    const { code, stderr } = await bench([join(repo, 'test/fixtures/no-such-site.ts')]);
    assert.equal(code, 1);
    assert.match(stderr, /^tsgi: module '.*no-such-site\.ts' was not found/);
  });

  it('is in --help', async () => {
    const stdout = capture();
    assert.equal(await main(['bench', '--help'], { stdout }), 0);
    assert.match(stdout.text, /^ {2}bench \[MODULE\[:ATTR\]\] /m);
    for (const flag of ['--settings', '--method', '--path', '--header', '--time', '--json']) {
      assert.ok(stdout.text.includes(flag), flag);
    }
  });
});

// The example site and a startproject site import 'tsgi', which the launcher resolves to these
// sources: they are benched as a user benches them, in a process of their own.
describe('tsgi bench on the example site', () => {
  it('--settings benches APP inside MIDDLEWARE, one row per layer, on a clean stdout', async () => {
    const { code, stdout, stderr } = await spawned([
      'bench',
      '--settings',
      join(mysite, 'settings.ts'),
      '--json',
      ...QUICK,
    ]);
    assert.equal(stderr, '');
    assert.equal(code, 0);
    // logging() writes to stdout; none of it may reach the JSON
    const document = JSON.parse(stdout) as Document;
    assert.equal(document.stack, 'settings');
    assert.deepEqual(
      document.rows.filter((row) => row.kind === 'layer').map((row) => row.name),
      ['loggingMiddleware', 'gzipMiddleware'],
    );
    assert.deepEqual(document.response, {
      status: 200,
      bytes: 'Welcome to mysite, served by tsgi.\n'.length,
    });
    for (const row of document.rows) assertMeasured(row);
    assert.match(document.notes.join('\n'), /the site wrote to stdout \d+ times while it was measured/);
    assert.match(document.notes.join('\n'), /WSGI_APPLICATION '\.\/wsgi\.ts:application' adds/);
  });

  it('benches wsgi.ts, which wraps its handler by hand, as one application', async () => {
    const { code, stdout, stderr } = await spawned(['bench', join(mysite, 'wsgi.ts'), ...QUICK]);
    assert.equal(stderr, '');
    assert.equal(code, 0);
    assert.match(stdout, /^tsgi bench: GET \/ on .*wsgi\.ts → 200, 35 bytes$/m);
    assert.match(stdout, /^bare application +\d/m);
    assert.match(stdout, /^total +\d/m);
    assert.match(stdout, /^note: .*exports a plain application, not a handler/m);
    assert.doesNotMatch(stdout, /"GET \/ HTTP\/1\.1" 200/, 'no access log line in the table');
  });

  it('stops with one line on a path that fails', async () => {
    const { code, stdout, stderr } = await spawned([
      'bench',
      '--settings',
      join(mysite, 'settings.ts'),
      '--path',
      '/boom',
      ...QUICK,
    ]);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /^tsgi: bench: the application threw on GET \/boom: Error: boom/);
    assert.equal(stderr.split('\n').length, 2, stderr);
  });
});

describe('tsgi bench on a startproject site', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsgi-bench-'));
    const quiet = { write: () => true };
    assert.equal(await main(['startproject', 'benched', join(dir, 'benched')], { stdout: quiet }), 0);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('benches its wsgi.ts as a handler', async () => {
    const { code, stdout, stderr } = await spawned([
      'bench',
      join(dir, 'benched/wsgi.ts'),
      '--json',
      ...QUICK,
    ]);
    assert.equal(stderr, '');
    assert.equal(code, 0);
    const document = JSON.parse(stdout) as Document;
    assert.equal(document.stack, 'handler');
    assert.deepEqual(
      document.rows.map((row) => row.kind),
      ['application', 'handler', 'receivers'],
    );
    assert.equal(document.response.status, 200);
    for (const row of document.rows) assertMeasured(row);
  });

  it('benches its settings, with a request of its own', async () => {
    const { code, stdout, stderr } = await spawned([
      'bench',
      '--settings',
      join(dir, 'benched/settings.ts'),
      '--path',
      '/api/time',
      ...QUICK,
    ]);
    assert.equal(stderr, '');
    assert.equal(code, 0);
    assert.match(stdout, /^tsgi bench: GET \/api\/time on .*settings\.ts → 200, \d+ bytes$/m);
  });
});
