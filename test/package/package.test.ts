/**
 * The package as a stranger gets it: `npm pack` (which builds dist/), the tarball installed into a
 * fresh project in a temp folder, and then that project used the way a user of Hono or Fastify
 * would — plain `node`, `require()`, strict `tsc` (TypeScript 5.9 and the current one, `nodenext`
 * and `bundler`), `npx tsgi serve` for a .mjs and a .ts site, Bun and Deno, a `tsgi startproject`
 * site started with `npm start`, and the README's first example pasted as it is.
 *
 * The consumer's files are in test/package/consumer/. Installing needs the npm registry (for the
 * package's dependencies and TypeScript 5.9); Bun and Deno come from this repository's
 * devDependencies. Servers listen on 127.0.0.1 only and are killed when the suite ends.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const consumerFiles = fileURLToPath(new URL('./consumer', import.meta.url));
const bin = join(repo, 'node_modules/.bin');
const currentTsc = join(repo, 'node_modules/typescript/bin/tsc');
const quiet = { DO_NOT_TRACK: '1', DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1', npm_config_fund: 'false' };
const env = {
  ...process.env,
  ...quiet,
  TSGI_SETTINGS_MODULE: undefined,
  PORT: undefined,
  NODE_OPTIONS: undefined,
};

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to the end (bounded by `timeout`) and resolves with what it printed. */
function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string | undefined>; timeout?: number },
): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: { ...env, ...options.env }, timeout: options.timeout ?? 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function ok(ran: Promise<Ran>): Promise<Ran> {
  const result = await ran;
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  return result;
}

const running = new Set<ChildProcess>();

/** A long-running process and its output so far, with a way to wait for a line of it. */
function start(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string | undefined> },
) {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so `npm start`'s children die with it
  });
  running.add(child);
  let output = '';
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of waiters) waiter();
  };
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    output += text;
    wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    output += text;
    wake();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      wake();
      resolve(code);
    }),
  );
  return {
    child,
    exited,
    get output() {
      return output;
    },
    /** Resolves with the match once `pattern` matches the output; fails if the process exits first. */
    async waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
      for (;;) {
        const match = pattern.exec(output);
        if (match !== null) return match;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`${command} ${args.join(' ')} exited before printing ${pattern}:\n${output}`);
        }
        await new Promise<void>((resolve) => {
          const waiter = () => {
            waiters.delete(waiter);
            resolve();
          };
          waiters.add(waiter);
        });
      }
    },
    stop() {
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      return exited;
    },
  };
}

after(() => {
  for (const child of running) if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The JSON lines a process printed. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

let work: string;
let tarball: string;
let consumer: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'tsgi-package-'));
  await ok(run('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: repo, timeout: 120_000 }));
  const packed = (await readdir(work)).filter((name) => name.endsWith('.tgz'));
  assert.equal(packed.length, 1, `npm pack wrote one tarball: ${packed.join(', ')}`);
  tarball = join(work, packed[0]!);
  consumer = join(work, 'consumer');
  await cp(consumerFiles, consumer, { recursive: true });
  await writeFile(
    join(consumer, 'package.json'),
    `${JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2)}\n`,
  );
  await ok(
    run('npm', ['install', '--no-audit', '--no-fund', tarball, 'typescript@~5.9', '@types/node@20'], {
      cwd: consumer,
      timeout: 300_000,
    }),
  );
});

after(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('ships the built JavaScript, declarations and source maps, and no TypeScript sources or tests', async () => {
    const listed = await ok(run('tar', ['-tzf', tarball], { cwd: work }));
    const files = listed.stdout.trim().split('\n');
    for (const file of [
      'package/package.json',
      'package/README.md',
      'package/dist/src/index.js',
      'package/dist/src/index.d.ts',
      'package/dist/src/index.js.map',
      'package/dist/middleware/index.js',
      'package/dist/middleware/index.d.ts',
      'package/dist/src/host.js',
      'package/dist/src/host.d.ts',
      'package/dist/cli/tsgi.js',
    ]) {
      assert.ok(files.includes(file), `${file} is in the tarball`);
    }
    const strays = files.filter(
      (file) => (/\.(?:ts|tsx)$/.test(file) && !file.endsWith('.d.ts')) || file.includes('/test/'),
    );
    assert.deepEqual(strays, [], 'no TypeScript sources or tests');
  });

  it('has declarations that import .js paths only', async () => {
    const declarations = await readFile(join(consumer, 'node_modules/tsgi/dist/src/index.d.ts'), 'utf8');
    assert.match(declarations, /from '\.\/handler\.js'/);
    assert.doesNotMatch(declarations, /from '\.\/[\w-]+\.ts'/);
  });
});

describe('plain Node with no loader', () => {
  it('imports tsgi, tsgi/host and tsgi/middleware in a .mjs file, serves, answers, and fires the signals', async () => {
    const { stdout } = await ok(run(process.execPath, ['app.mjs'], { cwd: consumer }));
    assert.deepEqual(JSON.parse(stdout), {
      hello: 'Hello World',
      other: 'from the app',
      events: [
        'started /hello',
        'finished /hello 200 completed',
        'started /other',
        'finished /other 200 completed',
        'started /hello',
        'finished /hello 200 completed',
        'hosted Hello World',
      ],
      inFlight: 0,
    });
  });

  it('loads through require() from CommonJS', async () => {
    const { stdout } = await ok(run(process.execPath, ['require.cjs'], { cwd: consumer }));
    assert.deepEqual(JSON.parse(stdout), { body: 'Hello World', inFlight: 0 });
  });
});

describe('tsc --noEmit on a strict consumer', () => {
  const configs = {
    nodenext: { module: 'nodenext', moduleResolution: 'nodenext' },
    bundler: { module: 'esnext', moduleResolution: 'bundler' },
  };
  const compilers = {
    'TypeScript 5.9': () => join(consumer, 'node_modules/typescript/bin/tsc'),
    'the current TypeScript': () => currentTsc,
  };
  async function tsc(compiler: string, resolution: keyof typeof configs, file: string): Promise<Ran> {
    const config = join(consumer, `tsconfig.${resolution}.${file}.json`);
    await writeFile(
      config,
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          ...configs[resolution],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        files: [file],
      }),
    );
    return run(process.execPath, [compiler, '-p', config], { cwd: consumer });
  }

  for (const [name, compiler] of Object.entries(compilers)) {
    for (const resolution of Object.keys(configs) as (keyof typeof configs)[]) {
      it(`passes with ${name} under ${resolution}, without skipLibCheck`, async () => {
        const { code, stdout, stderr } = await tsc(compiler(), resolution, 'consumer.ts');
        assert.equal(code, 0, stdout + stderr);
      });

      it(`rejects a wrong payload type with ${name} under ${resolution}`, async () => {
        const { code, stdout } = await tsc(compiler(), resolution, 'wrong.ts');
        assert.notEqual(code, 0);
        assert.match(
          stdout,
          /wrong\.ts\(5,9\): error TS2322: Type 'number' is not assignable to type 'string'/,
        );
        assert.equal(stdout.trim().split('\n').length, 1, `only that error:\n${stdout}`);
      });
    }
  }
});

describe('npx tsgi serve', () => {
  for (const [site, hello, root] of [
    ['site.mjs', 'hello from site.mjs', 'site.mjs'],
    ['site.ts', 'hello from site.ts', 'site.ts /'],
  ] as const) {
    it(`serves a ${site.slice(5)} site`, async () => {
      const server = start('npx', ['tsgi', 'serve', site, '--port', '0'], { cwd: consumer });
      const [, url] = await server.waitFor(/^tsgi: serving (http:\/\/\S+)$/m);
      assert.equal(await (await fetch(`${url}/hello`)).text(), hello);
      assert.equal(await (await fetch(`${url}/`)).text(), root);
      await server.stop(); // npx and its tsgi child, by process group
    });
  }

  it('serves a .mjs site without tsx, which only TypeScript sites need', async () => {
    const tsx = join(consumer, 'node_modules/tsx');
    await rename(tsx, `${tsx}.hidden`);
    try {
      const server = start('npx', ['tsgi', 'serve', 'site.mjs', '--port', '0'], { cwd: consumer });
      const [, url] = await server.waitFor(/^tsgi: serving (http:\/\/\S+)$/m);
      assert.equal(await (await fetch(`${url}/hello`)).text(), 'hello from site.mjs');
      await server.stop();
      const ts = await run('npx', ['tsgi', 'serve', 'site.ts', '--port', '0'], { cwd: consumer });
      assert.equal(ts.code, 1);
      assert.match(ts.stderr, /^tsgi: a TypeScript site needs tsx, which did not load/m);
    } finally {
      await rename(`${tsx}.hidden`, tsx);
    }
  });
});

describe('other runtimes import the installed package', () => {
  // How each runtime serves `export default { fetch }` on a port, and the line it prints once it listens.
  const runtimes = {
    Bun: (port: number) => ({
      command: join(bin, 'bun'),
      args: ['run', 'runtime-server.mjs'],
      env: { PORT: String(port) },
      ready: new RegExp(`127\\.0\\.0\\.1:${port}`),
    }),
    Deno: (port: number) => ({
      command: join(bin, 'deno'),
      args: ['serve', '--host', '127.0.0.1', '--port', String(port), 'runtime-server.mjs'],
      env: {},
      ready: /Listening on http:\/\/127\.0\.0\.1/,
    }),
  };

  for (const [name, how] of Object.entries(runtimes)) {
    it(`${name} serves export default { fetch: handler.fetch }, and each request finishes once`, async () => {
      const port = await freePort();
      const { command, args, env, ready } = how(port);
      const server = start(command, args, { cwd: consumer, env });
      await server.waitFor(ready);
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/hello`)).text(), 'Hello World');
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/other`)).text(), 'from the runtime');
      await server.waitFor(/"path":"\/other"/);
      assert.deepEqual(
        jsonLines(server.output).map(({ path, status, outcome }) => [path, status, outcome]),
        [
          ['/hello', 200, 'completed'],
          ['/other', 200, 'completed'],
        ],
      );
      await server.stop();
    });
  }
});

describe('a new user', () => {
  it('makes a site with startproject, installs tsgi into it, and npm start serves it on $PORT', async () => {
    const site = join(work, 'mysite');
    await ok(run('npx', ['tsgi', 'startproject', 'mysite', site], { cwd: consumer }));
    const manifest = JSON.parse(await readFile(join(site, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(manifest.type, 'module');
    await ok(run('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: site, timeout: 300_000 }));
    const port = await freePort();
    const server = start('npm', ['start'], { cwd: site, env: { PORT: String(port) } });
    await server.waitFor(new RegExp(`^tsgi: serving http://\\S+:${port}$`, 'm'));
    const response = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await response.text(), 'Hello from mysite\n');
    assert.equal(
      (await fetch(`http://127.0.0.1:${port}/api/time`)).headers.get('content-type'),
      'application/json',
    );
    await server.stop();
    // What the site's own stack costs, from the installed package: one row per MIDDLEWARE entry.
    const bench = await ok(
      run('npx', ['tsgi', 'bench', 'wsgi.ts', '--json', '--time', '0.1'], { cwd: site }),
    );
    const report = JSON.parse(bench.stdout) as { rows: { kind?: string; name?: string; medianUs: number }[] };
    assert.ok(Array.isArray(report.rows) && report.rows.length >= 2, bench.stdout);
    for (const row of report.rows)
      assert.ok(Number.isFinite(row.medianUs) && row.medianUs > 0, JSON.stringify(row));
  });

  it("pastes the README's wsgi.ts and signal example into a new ES module project and serves it", async () => {
    const readme = await readFile(join(repo, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
    const wsgi = blocks.find((block) => block.startsWith('// wsgi.ts'));
    const signal = blocks.find((block) => block.includes("signals.connect('request_finished'"));
    assert.ok(wsgi !== undefined && signal !== undefined, 'the README shows a wsgi.ts and a signal receiver');
    const project = join(work, 'pasted');
    await mkdir(project);
    await ok(run('npm', ['init', '-y'], { cwd: project }));
    await ok(run('npm', ['pkg', 'set', 'type=module'], { cwd: project }));
    await ok(run('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: project, timeout: 300_000 }));
    await writeFile(join(project, 'wsgi.ts'), `${wsgi}\n${signal}`);
    const server = start('npx', ['tsgi', 'serve', 'wsgi.ts', '--port', '0'], { cwd: project });
    const [, url] = await server.waitFor(/^tsgi: serving (http:\/\/\S+)$/m);
    assert.equal(await (await fetch(`${url}/`)).text(), 'It works!');
    assert.equal(await (await fetch(`${url}/hello`)).text(), 'Hello World');
    await server.waitFor(/GET \/hello 200 completed/);
    await server.stop(); // npx and its tsgi child, by process group
  });
});
