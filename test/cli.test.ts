import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net, { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../cli/main.ts';
import { isAlive, killAll, tsgi } from './fixtures/cli-process.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const probe = join(repo, 'test/fixtures/sites/probe.ts');
const alphaSettings = join(repo, 'test/fixtures/sites/alpha/settings.ts');
const mysiteSettings = join(repo, 'examples/mysite/settings.ts');
const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };

/** An output that keeps what is written and can wait for a pattern to appear in it. */
function capture() {
  let wake: (() => void) | undefined;
  const output = {
    text: '',
    write(text: string) {
      output.text += text;
      wake?.();
    },
    async waitFor(pattern: RegExp): Promise<RegExpExecArray> {
      for (let match = pattern.exec(output.text); ; match = pattern.exec(output.text)) {
        if (match !== null) return match;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
  return output;
}

/** Runs `tsgi args` to the end. */
async function run(args: string[], env: Record<string, string | undefined> = {}) {
  const process = tsgi(args, env);
  const { code } = await process.exited;
  return { code, stdout: process.stdout, stderr: process.stderr };
}

after(killAll);

describe('tsgi --help and --version', () => {
  it('prints the usage and exits 0', async () => {
    const { code, stdout } = await run(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: tsgi <command>/);
    for (const command of [
      'serve',
      'runserver',
      'startproject',
      '--workers',
      '--graceful-timeout',
      '--reload',
    ]) {
      assert.ok(stdout.includes(command), `the usage mentions ${command}`);
    }
  });

  it('prints the version from package.json and exits 0', async () => {
    const { code, stdout } = await run(['--version']);
    assert.equal(code, 0);
    assert.equal(stdout, `tsgi ${version}\n`);
  });
});

describe('tsgi startproject', () => {
  let dir: string;
  before(async () => {
    // Outside the repository: the site reaches 'tsgi' only through the launcher's resolve hook.
    dir = join(await mkdtemp(join(tmpdir(), 'tsgi-cli-')), 'site');
  });
  after(async () => {
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('writes a site that `tsgi serve` serves at once', async () => {
    const created = await run(['startproject', 'demo', dir]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^tsgi: created demo in /);
    assert.match(created.stdout, /npm install && npm start/);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    assert.equal(manifest.type, 'module', 'an ES module package: the .ts modules use top-level await');
    assert.deepEqual(manifest.scripts, {
      start: 'tsgi serve wsgi.ts',
      dev: 'tsgi runserver --settings settings.ts',
    });
    assert.deepEqual(manifest.dependencies, { tsgi: `^${version}` });
    const tsconfig = JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8'));
    assert.equal(tsconfig.compilerOptions.allowImportingTsExtensions, true);
    assert.equal(tsconfig.compilerOptions.strict, true);

    const server = tsgi(['serve', join(dir, 'wsgi.ts'), '--port', '0']);
    const url = await server.url();
    const response = await fetch(`${url}/`);
    assert.equal(await response.text(), 'Hello from demo\n');
    assert.equal((await fetch(`${url}/api/time`)).headers.get('content-type'), 'application/json');
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  it('writes a site that `tsgi runserver` serves, and reloads it when a file changes', async () => {
    const server = tsgi(['runserver', '127.0.0.1:0'], { TSGI_SETTINGS_MODULE: join(dir, 'settings.ts') });
    const first = await server.url();
    assert.equal(await (await fetch(`${first}/`)).text(), 'Hello from demo\n');
    await server.waitFor(/"GET \/ HTTP\/1\.1" 200 16/); // the access log is on

    await appendFile(join(dir, 'app.ts'), "\nexport const reloaded = 'yes';\n");
    await server.waitFor(/app\.ts changed; restarting/);
    const second = await server.url(2);
    assert.equal(await (await fetch(`${second}/`)).text(), 'Hello from demo\n');
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  it('notes an existing package.json that is not an ES module package, and keeps it', async () => {
    const other = join(dir, '..', 'commonjs');
    await mkdir(other);
    await writeFile(join(other, 'package.json'), '{ "name": "old" }\n');
    const stdout = capture();
    const stderr = capture();
    assert.equal(await main(['startproject', 'other', other], { stdout, stderr }), 0);
    assert.match(stderr.text, /^tsgi: note: .*package\.json has no "type": "module": add it/);
    assert.equal(readFileSync(join(other, 'package.json'), 'utf8'), '{ "name": "old" }\n');
  });

  it('refuses to overwrite an existing site', async () => {
    const { code, stderr } = await run(['startproject', 'demo', dir]);
    assert.equal(code, 1);
    assert.match(stderr, /^tsgi: .*\/app\.ts already exists; not overwriting it\n$/);
  });
});

describe('tsgi runserver', () => {
  it('serves the example site named by TSGI_SETTINGS_MODULE, with its WSGI_APPLICATION', async () => {
    const server = tsgi(['runserver', '0', '--noreload'], { TSGI_SETTINGS_MODULE: mysiteSettings });
    const url = await server.url();
    assert.equal(await (await fetch(`${url}/`)).text(), 'Welcome to mysite, served by tsgi.\n');
    const time = (await (await fetch(`${url}/api/time`)).json()) as { now: string };
    assert.ok(!Number.isNaN(Date.parse(time.now)));
    assert.equal(await (await fetch(`${url}/stream`)).text(), '5\n4\n3\n2\n1\n');
    assert.equal(
      await (await fetch(`${url}/hello`)).text(),
      'Hello World',
      'wsgi.ts wraps it in helloWorld()',
    );
    const boom = await fetch(`${url}/boom`);
    assert.equal(boom.status, 500);
    assert.match(await boom.text(), /boom: \/boom always fails/, 'DEBUG is on in the example settings');
    await server.waitFor(/"GET \/boom HTTP\/1\.1" 500/);
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    // the example's MIDDLEWARE has logging(): runserver adds no second access log
    assert.equal(server.stdout.match(/"GET \/boom HTTP\/1\.1" 500/g)?.length, 1);
  });

  it('takes the settings module from --settings', async () => {
    const server = tsgi(['runserver', '127.0.0.1:0', '--noreload', '--settings', alphaSettings]);
    const url = await server.url();
    const response = await fetch(`${url}/`);
    assert.equal(await response.text(), 'alpha');
    assert.equal(response.headers.get('x-site'), 'alpha');
    server.child.kill('SIGINT');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });
});

describe('tsgi serve, stopping', () => {
  it('lets a request in flight finish on SIGTERM, then exits 0', async () => {
    const server = tsgi(['serve', probe, '--port', '0']);
    const url = await server.url();
    const response = await fetch(`${url}/slow`);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    assert.equal(decoder.decode((await reader.read()).value), 'first\n', 'the request is in flight');
    server.child.kill('SIGTERM');
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      rest += decoder.decode(chunk.value);
    assert.equal(rest, 'last\n');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  it('cuts a request that outlives --graceful-timeout, and still exits (1: it cut a request)', async () => {
    const server = tsgi(['serve', probe, '--port', '0', '--graceful-timeout', '0.2']);
    const url = await server.url();
    const response = await fetch(`${url}/forever`);
    const reader = response.body!.getReader();
    await reader.read();
    server.child.kill('SIGTERM');
    await assert.rejects(async () => {
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read());
    });
    const { code } = await server.exited;
    assert.equal(code, 1);
  });
});

describe('tsgi serve --workers 2', () => {
  it('serves from two workers, replaces a killed one, and stops them all on SIGTERM', async () => {
    const server = tsgi(['serve', probe, '--port', '0', '--workers', '2']);
    const url = await server.url();
    const ready = await server.waitFor(/^tsgi: worker (\d+) ready$/m, 2);
    const pids = ready.map((match) => Number(match[1]));
    assert.equal(new Set(pids).size, 2);
    const answered = Number(await (await fetch(`${url}/pid`)).text());
    assert.ok(pids.includes(answered), `a worker answered (${answered} in ${pids})`);

    process.kill(pids[0]!, 'SIGKILL');
    await server.waitFor(
      new RegExp(`^tsgi: worker ${pids[0]} exited \\(signal SIGKILL\\); starting another$`, 'm'),
    );
    const again = await server.waitFor(/^tsgi: worker (\d+) ready$/m, 3);
    const replacement = Number(again[2]![1]);
    assert.ok(!pids.includes(replacement));
    assert.ok(isAlive(replacement));
    assert.equal(await (await fetch(`${url}/`)).text(), 'probe');

    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.ok(!isAlive(pids[1]!) && !isAlive(replacement), 'every worker stopped');
    assert.equal(server.stdout.match(/tsgi: serving/g)?.length, 1, 'one serving line for all workers');
  });
});

// Each case is its own process: run a few side by side. The other usage errors are checked with
// main() below, which prints the same lines without the cost of a process each.
describe('when something is wrong', { concurrency: 3 }, () => {
  let busy: Server;
  let busyPort: number;
  let scratch: string;
  before(async () => {
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as { port: number }).port;
    // Inside the repository (.tsgi-* is git-ignored), where tsc and biome do not look.
    scratch = await mkdtemp(join(repo, '.tsgi-cli-'));
    await writeFile(join(scratch, 'syntax-error.ts'), 'export const application = (;\n');
    await writeFile(
      join(scratch, 'throws.ts'),
      "const url: string | undefined = undefined;\nif (!url) throw new Error('DATABASE_URL is not set');\nexport const application = () => new Response('');\n",
    );
    await writeFile(join(scratch, 'throws-later.mjs'), "await null;\nthrow new RangeError('bad config');\n");
    await writeFile(join(scratch, 'syntax-error.mjs'), 'const ok = 1;\nexport const application = (;\n');
    await mkdir(join(scratch, 'commonjs'));
    await writeFile(join(scratch, 'commonjs', 'package.json'), '{ "name": "old" }\n');
    await writeFile(
      join(scratch, 'commonjs', 'wsgi.ts'),
      "import { helloWorld } from 'tsgi/middleware';\nexport const application = helloWorld()(() => new Response(''));\nawait null;\n",
    );
  });
  after(async () => {
    busy.close();
    await rm(scratch, { recursive: true, force: true });
  });

  const cases: [string, () => string[], RegExp, number, Record<string, string>?][] = [
    [
      'an unknown command',
      () => ['frobnicate'],
      /^tsgi: unknown command 'frobnicate' \(run 'tsgi --help' for usage\)$/,
      2,
    ],
    [
      'an unknown flag',
      () => ['serve', probe, '--frob'],
      /^tsgi: unknown option '--frob' \(run 'tsgi --help' for usage\)$/,
      2,
    ],
    [
      'a missing module',
      () => ['serve', 'nowhere/wsgi.ts'],
      /^tsgi: module 'nowhere\/wsgi\.ts' was not found \(no file at /,
      1,
    ],
    [
      'a missing attr',
      () => ['serve', `${probe}:app`],
      /^tsgi: module '.*probe\.ts' has no export 'app' — its exports are: application$/,
      1,
    ],
    [
      'a port in use',
      () => ['serve', probe, '--port', String(busyPort)],
      /^tsgi: cannot listen on 127\.0\.0\.1:\d+: the address is already in use/,
      1,
    ],
    [
      'runserver without settings',
      () => ['runserver'],
      /^tsgi: runserver needs a settings module: set TSGI_SETTINGS_MODULE=/,
      1,
    ],
    [
      'runserver with settings that do not exist',
      () => ['runserver', '0'],
      /^tsgi: settings module \(named by TSGI_SETTINGS_MODULE\) 'nowhere\/settings\.ts' was not found/,
      1,
      { TSGI_SETTINGS_MODULE: 'nowhere/settings.ts' },
    ],
    [
      'a module with a syntax error',
      () => ['serve', join(scratch, 'syntax-error.ts')],
      /^tsgi: module '.*syntax-error\.ts' failed to load: TransformError: .*syntax-error\.ts:1:\d+: ERROR: /,
      1,
    ],
    [
      'a .mjs module with a syntax error (its file:line)',
      () => ['serve', join(scratch, 'syntax-error.mjs')],
      /^tsgi: module '.*syntax-error\.mjs' failed to load: SyntaxError: Unexpected token ';' \(at .*\/syntax-error\.mjs:2\)$/,
      1,
    ],
    [
      'a site that throws while loading (its message and file:line)',
      () => ['serve', join(scratch, 'throws.ts')],
      /^tsgi: module '.*throws\.ts' failed to load: Error: DATABASE_URL is not set \(at .*\/throws\.ts:2:\d+\)$/,
      1,
    ],
    [
      'a .mjs site that throws after an await',
      () => ['serve', join(scratch, 'throws-later.mjs')],
      /^tsgi: module '.*throws-later\.mjs' failed to load: RangeError: bad config \(at .*\/throws-later\.mjs:2:\d+\)$/,
      1,
    ],
    [
      'a .ts site in a package that is not an ES module package',
      () => ['serve', join(scratch, 'commonjs', 'wsgi.ts')],
      /^tsgi: module '.*wsgi\.ts' failed to load: .* — .*commonjs\/package\.json has no "type": "module", so Node loads .*wsgi\.ts as CommonJS: run `npm pkg set type=module` there$/,
      1,
    ],
    [
      'a $PORT that is not a port',
      () => ['serve', probe],
      /^tsgi: PORT: 'eighty' is not a port \(0-65535\) \(run 'tsgi --help' for usage\)$/,
      2,
      { PORT: 'eighty' },
    ],
    [
      'a wsgi.ts whose settings module does not exist',
      () => ['serve', join(repo, 'test/fixtures/sites/alpha/wsgi.ts')],
      /^tsgi: settings module 'nowhere\/settings\.ts' was not found/,
      1,
      { TSGI_SETTINGS_MODULE: 'nowhere/settings.ts' },
    ],
    [
      'runserver with a WSGI_APPLICATION that does not exist',
      () => ['runserver', '0'],
      /^tsgi: WSGI_APPLICATION '\.\/missing-wsgi\.ts:application' of settings module '.*broken-wsgi\/settings\.ts': module '\.\/missing-wsgi\.ts' was not found/,
      1,
      { TSGI_SETTINGS_MODULE: join(repo, 'test/fixtures/sites/broken-wsgi/settings.ts') },
    ],
  ];

  for (const [situation, args, message, code, env] of cases) {
    it(`prints one line and exits ${code} for ${situation}`, async () => {
      const result = await run(args(), env);
      assert.equal(result.code, code, result.stderr);
      assert.equal(result.stderr.split('\n').length, 2, `one line: ${result.stderr}`);
      assert.match(result.stderr.trimEnd(), message);
      assert.equal(result.stdout, '');
    });
  }
});

describe('tsgi serve --verbose', () => {
  it('prints the whole stack of what a site threw while loading', async () => {
    const scratch = await mkdtemp(join(repo, '.tsgi-cli-'));
    try {
      await writeFile(
        join(scratch, 'wsgi.mjs'),
        "function connect() {\n  throw new Error('refused');\n}\nconnect();\n",
      );
      const result = await run(['serve', join(scratch, 'wsgi.mjs'), '--verbose']);
      assert.equal(result.code, 1);
      const [line, ...stack] = result.stderr.trimEnd().split('\n');
      assert.match(
        line!,
        /^tsgi: module '.*wsgi\.mjs' failed to load: Error: refused \(at .*wsgi\.mjs:2:9\)$/,
      );
      assert.equal(stack[0], 'Error: refused');
      assert.match(stack[1]!, /^ {4}at connect \(file:\/\/.*wsgi\.mjs:2:9\)$/);
      assert.match(stack[2]!, /^ {4}at file:\/\/.*wsgi\.mjs:4:1$/);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});

describe('$PORT', () => {
  async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  it('is where tsgi serve listens when no port is given, on every interface as gunicorn does', async () => {
    const port = await freePort();
    const server = tsgi(['serve', probe], { PORT: String(port) });
    assert.equal(await server.url(), `http://0.0.0.0:${port}`);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'probe');
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  it('gives way to --port and keeps --host', async () => {
    const stdout = capture();
    const controller = new AbortController();
    const env = { PORT: '1' };
    const serving = main(['serve', probe, '--port', '0', '--host', '127.0.0.1'], {
      stdout,
      env,
      signal: controller.signal,
    });
    const url = (await stdout.waitFor(/tsgi: serving (\S+)/))[1]!;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(url, 'http://127.0.0.1:1');
    controller.abort();
    assert.equal(await serving, 0);
  });

  it('is where tsgi runserver listens, still on 127.0.0.1, when no address is given', async () => {
    const port = await freePort();
    const server = tsgi(['runserver', '--noreload'], {
      TSGI_SETTINGS_MODULE: mysiteSettings,
      PORT: String(port),
    });
    assert.equal(await server.url(), `http://127.0.0.1:${port}`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/hello`)).status, 200);
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  it('is named in --help', async () => {
    const { stdout } = await run(['--help']);
    assert.match(stdout, /\$PORT/);
  });
});

describe('tsgi serve --no-fast-response', () => {
  for (const [flags, expected] of [
    [[], 'swapped'],
    [['--no-fast-response'], 'original'],
  ] as const) {
    it(`serves with the global Response ${expected === 'original' ? 'left alone' : 'swapped'} given ${flags.join(' ') || 'no flag'}`, async () => {
      const stdout = capture();
      const controller = new AbortController();
      const serving = main(['serve', probe, '--port', '0', ...flags], { stdout, signal: controller.signal });
      const url = (await stdout.waitFor(/tsgi: serving (\S+)/))[1]!;
      assert.equal(await (await fetch(`${url}/global`)).text(), expected);
      controller.abort();
      assert.equal(await serving, 0);
    });
  }
});

describe('main() called directly', () => {
  it('serves until io.signal aborts, then resolves 0', async () => {
    const stdout = capture();
    const stderr = capture();
    const controller = new AbortController();
    const serving = main(['serve', probe, '--port', '0'], { stdout, stderr, signal: controller.signal });
    const url = (await stdout.waitFor(/tsgi: serving (\S+)/))[1]!;
    assert.equal(await (await fetch(`${url}/`)).text(), 'probe');
    controller.abort();
    assert.equal(await serving, 0);
    assert.equal(stderr.text, '');
  });

  it('passes --keep-alive-timeout on: the server says so and closes an idle connection after it', async () => {
    const stdout = capture();
    const controller = new AbortController();
    const serving = main(['serve', probe, '--port', '0', '--keep-alive-timeout', '1'], {
      stdout,
      stderr: capture(),
      signal: controller.signal,
    });
    try {
      const url = new URL((await stdout.waitFor(/tsgi: serving (\S+)/))[1]!);
      const started = Date.now();
      const { head, closedAfterMs } = await new Promise<{ head: string; closedAfterMs: number }>(
        (resolve, reject) => {
          const socket = net.connect(Number(url.port), url.hostname);
          let received = '';
          socket.on('data', (data) => {
            received += data.toString('latin1');
          });
          socket.on('error', reject);
          socket.on('close', () => resolve({ head: received, closedAfterMs: Date.now() - started }));
          socket.write(`GET / HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
        },
      );
      assert.match(head, /\r\nkeep-alive: timeout=1\r\n/i);
      assert.ok(closedAfterMs >= 900 && closedAfterMs < 4000, `closed after ${closedAfterMs} ms`);
    } finally {
      controller.abort();
      assert.equal(await serving, 0);
    }
  });

  const usageErrors: [string, () => string[], RegExp, number][] = [
    [
      'a flag without its value',
      () => ['serve', probe, '--port'],
      /^tsgi: --port needs a value \(run 'tsgi --help'/,
      2,
    ],
    [
      'a bad port',
      () => ['serve', probe, '--port', 'http'],
      /^tsgi: --port: 'http' is not a port \(0-65535\)/,
      2,
    ],
    ['no module to serve', () => ['serve'], /^tsgi: serve needs the application to serve: .*--help/, 2],
    [
      'a bad --workers',
      () => ['serve', probe, '--workers', 'many'],
      /^tsgi: --workers must be a whole number/,
      2,
    ],
    [
      '--reload with --workers',
      () => ['serve', probe, '--reload', '--workers', '2'],
      /^tsgi: --reload runs a single process: it cannot be used with --workers/,
      2,
    ],
    [
      'an invalid project name',
      () => ['startproject', 'my site'],
      /^tsgi: 'my site' is not a valid project name/,
      2,
    ],
    ['a bad --bind', () => ['serve', probe, '--bind', 'a:b:c'], /^tsgi: --bind: 'a:b:c' is not HOST:PORT/, 2],
    [
      '--bind with --port',
      () => ['serve', probe, '--bind', ':0', '--port', '0'],
      /^tsgi: use either --bind or --host\/--port/,
      2,
    ],
    ['an extra argument', () => ['serve', probe, 'more'], /^tsgi: unexpected argument 'more'/, 2],
  ];

  for (const [situation, args, message, code] of usageErrors) {
    it(`returns ${code} and prints one line with a --help hint for ${situation}`, async () => {
      const stdout = capture();
      const stderr = capture();
      assert.equal(await main(args(), { stdout, stderr }), code);
      assert.match(stderr.text, message);
      assert.match(stderr.text, /^[^\n]* \(run 'tsgi --help' for usage\)\n$/);
      assert.equal(stdout.text, '');
    });
  }
});
