import assert from 'node:assert/strict';
import { get as httpGet, type IncomingMessage } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_LIMITS, serveLimits } from '../cli/limits.ts';
import { main } from '../cli/main.ts';
import { parseServe, type ServeRequest } from '../cli/serve.ts';
import { getOnce, killAll, repo, tsgi } from './fixtures/cli-process.ts';

const probe = join(repo, 'test/fixtures/sites/probe.ts');
const busy = join(repo, 'test/fixtures/sites/busy.ts');
const alphaSettings = join(repo, 'test/fixtures/sites/alpha/settings.ts');

after(killAll);

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

function planOf(args: string[], env: Record<string, string | undefined> = {}): ServeRequest {
  const request = parseServe([probe, ...args], env);
  assert.notEqual(request, 'help');
  return request as ServeRequest;
}

/** Opens a GET of `url` on a connection of its own and resolves once its first chunk arrived. */
function openStream(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { agent: false }, (response) => {
      // Once the server cuts it, the stream fails: that is expected here.
      response.on('error', () => undefined);
      response.once('data', () => resolve(response));
    });
    request.on('error', reject);
  });
}

/** Sends `text` on a new connection; resolves with what came back once the server closed it, or answered `until`. */
function exchange(
  port: number,
  text: string,
  until?: RegExp,
): Promise<{ received: string; closed: boolean; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => {
      received += data;
      if (until?.test(received)) resolve({ received, closed: false, socket });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A connection refused by a full server may be reset rather than closed.
      if (error.code === 'ECONNRESET') resolve({ received, closed: true, socket });
      else reject(error);
    });
    socket.on('close', () => resolve({ received, closed: true, socket }));
    socket.write(text);
  });
}

describe('the timeout and limit flags of tsgi serve', () => {
  it('default to what a production server would pick', () => {
    const { plan } = planOf([]);
    assert.deepEqual(plan.limits, DEFAULT_LIMITS);
    assert.deepEqual(serveLimits(plan.limits), {
      timeout: 30_000,
      headersTimeout: 10_000,
      keepAliveTimeout: 5000,
      sendTimeout: 60_000,
      maxConnections: 0,
      gracefulTimeout: 30_000,
    });
  });

  it('reach serve() as milliseconds, fractions of a second included', () => {
    const { plan } = planOf([
      '--timeout',
      '2.5',
      '--headers-timeout',
      '0.25',
      '--keep-alive-timeout',
      '65',
      '--send-timeout',
      '0.001',
      '--max-connections',
      '100',
      '--graceful-timeout',
      '0.5',
    ]);
    assert.deepEqual(serveLimits(plan.limits), {
      timeout: 2500,
      headersTimeout: 250,
      keepAliveTimeout: 65_000,
      sendTimeout: 1,
      maxConnections: 100,
      gracefulTimeout: 500,
    });
  });

  it('take 0 to turn a timeout off', () => {
    const { plan } = planOf(['-t', '0', '--headers-timeout', '0', '--send-timeout', '0']);
    const options = serveLimits(plan.limits);
    assert.equal(options.timeout, 0);
    assert.equal(options.headersTimeout, 0);
    assert.equal(options.sendTimeout, 0);
  });

  it('never round a tiny timeout down to 0, which would turn it off', () => {
    assert.equal(planOf(['--timeout', '0.0001']).plan.limits.timeoutMs, 1);
  });

  it('are each documented in --help with its default', async () => {
    const stdout = capture();
    assert.equal(await main(['serve', '--help'], { stdout }), 0);
    for (const [flag, fallback] of [
      ['--timeout S', '(default 30)'],
      ['--headers-timeout S', '(default 10)'],
      ['--keep-alive-timeout S', '(default 5)'],
      ['--send-timeout S', '(default 60)'],
      ['--max-connections N', '(default 0'],
      ['--graceful-timeout S', '(default 30'],
    ] as const) {
      const line = stdout.text.split('\n').findIndex((text) => text.includes(flag));
      assert.ok(line >= 0, `--help names ${flag}`);
      const entry = stdout.text
        .split('\n')
        .slice(line, line + 4)
        .join(' ');
      assert.ok(entry.includes(fallback), `--help gives the default of ${flag}: ${entry}`);
    }
    assert.match(stdout.text, /heartbeat needs --workers/);
    assert.match(stdout.text, /exit status is 1/);
  });
});

describe('a bad value of a timeout or limit flag', () => {
  const cases: [string, string[], RegExp][] = [
    [
      '--timeout',
      ['serve', probe, '--timeout', 'soon'],
      /^tsgi: --timeout must be a number of seconds, got 'soon'/,
    ],
    [
      'a negative --timeout',
      ['serve', probe, '--timeout=-1'],
      /^tsgi: --timeout must be a number of seconds, got '-1'/,
    ],
    [
      '--timeout -1 (parseArgs takes -1 for an option)',
      ['serve', probe, '--timeout', '-1'],
      /^tsgi: --timeout needs a value \(one that starts with '-' is written --timeout=VALUE\)/,
    ],
    [
      '--headers-timeout',
      ['serve', probe, '--headers-timeout', '1e3'],
      /^tsgi: --headers-timeout must be a number of seconds, got '1e3'/,
    ],
    [
      '--keep-alive-timeout',
      ['serve', probe, '--keep-alive-timeout', '5s'],
      /^tsgi: --keep-alive-timeout must be a number of seconds, got '5s'/,
    ],
    [
      '--send-timeout',
      ['serve', probe, '--send-timeout', ''],
      /^tsgi: --send-timeout must be a number of seconds, got ''/,
    ],
    [
      '--max-connections',
      ['serve', probe, '--max-connections', '1.5'],
      /^tsgi: --max-connections must be a whole number \(0 for no limit\), got '1.5'/,
    ],
    [
      '--graceful-timeout past what a Node timer holds',
      ['serve', probe, '--graceful-timeout', '99999999'],
      /^tsgi: --graceful-timeout must be at most 2147483 seconds \(about 24 days\), got '99999999'/,
    ],
    [
      'runserver --timeout',
      ['runserver', '--settings', alphaSettings, '--noreload', '--timeout', 'never'],
      /^tsgi: --timeout must be a number of seconds, got 'never'/,
    ],
  ];
  for (const [situation, args, message] of cases) {
    it(`exits 2 with one line and a --help hint: ${situation}`, async () => {
      const stdout = capture();
      const stderr = capture();
      assert.equal(await main(args, { stdout, stderr }), 2);
      assert.match(stderr.text, message);
      assert.match(stderr.text, /^[^\n]* \(run 'tsgi --help' for usage\)\n$/);
      assert.equal(stdout.text, '');
    });
  }

  it('is refused by the real command too, with exit code 2', async () => {
    const server = tsgi(['serve', probe, '--send-timeout', 'forever']);
    assert.deepEqual(await server.exited, { code: 2, signal: null });
    assert.match(server.stderr, /^tsgi: --send-timeout must be a number of seconds, got 'forever' \(run/);
    assert.equal(server.stderr.split('\n').length, 2, `one line: ${server.stderr}`);
  });
});

describe('tsgi serve, stopping', () => {
  it('says how many requests the graceful timeout cut, and exits 1', async () => {
    const server = tsgi(['serve', probe, '--port', '0', '--graceful-timeout', '0.5']);
    const url = await server.url();
    const streams = await Promise.all([1, 2, 3].map(() => openStream(`${url}/forever`)));
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 1, signal: null });
    assert.match(server.stderr, /^tsgi: graceful timeout \(0\.5s\) cut 3 request\(s\)$/m);
    assert.equal(server.stderr.match(/graceful timeout/g)?.length, 1, server.stderr);
    for (const stream of streams) assert.equal(stream.complete, false, 'the stream was cut');
  });

  it('exits 0 and says nothing of a cut when every request finished in time', async () => {
    const server = tsgi(['serve', probe, '--port', '0', '--graceful-timeout', '5']);
    const url = await server.url();
    // In flight once its first line came; /slow ends 300 ms later.
    const slow = await openStream(`${url}/slow`);
    let rest = '';
    slow.setEncoding('utf8').on('data', (text: string) => {
      rest += text;
    });
    const ended = new Promise((resolve) => slow.once('end', resolve));
    server.child.kill('SIGTERM');
    await ended;
    assert.equal(rest, 'last\n');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.doesNotMatch(server.stderr, /graceful timeout|cut/);
  });
});

// These need serve()'s side of the options (request timeout, headers timeout, connection limit).
describe('the flags, as the server applies them', () => {
  it('--max-connections 1 closes a second connection while the first is open', {
    timeout: 10_000,
  }, async () => {
    const server = tsgi(['serve', probe, '--port', '0', '--max-connections', '1']);
    const { port } = new URL(await server.url());
    const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
    const first = await exchange(Number(port), request, /\r\n\r\nprobe$/);
    try {
      assert.equal(first.closed, false, 'the first connection is served and stays open');
      const second = await exchange(Number(port), request, /\r\n\r\nprobe$/);
      second.socket.destroy();
      assert.equal(second.closed, true, `the second connection is closed, not served: ${second.received}`);
      assert.doesNotMatch(second.received, /^HTTP\/1\.1 200/);
    } finally {
      first.socket.destroy();
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('--timeout answers 503 for a request that never gets its response', { timeout: 10_000 }, async () => {
    const server = tsgi(['serve', busy, '--port', '0', '--timeout', '0.5']);
    try {
      const url = await server.url();
      const { status } = await getOnce(`${url}/stall`);
      assert.equal(status, 503);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('--headers-timeout closes a connection whose headers never end (slow loris)', {
    timeout: 10_000,
  }, async () => {
    const server = tsgi(['serve', probe, '--port', '0', '--headers-timeout', '0.5']);
    try {
      const { port } = new URL(await server.url());
      const started = Date.now();
      const { closed } = await exchange(
        Number(port),
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: 1\r\n`,
      );
      const closedAfterMs = Date.now() - started;
      assert.equal(closed, true);
      assert.ok(closedAfterMs >= 400 && closedAfterMs < 4000, `closed after ${closedAfterMs} ms`);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
