import assert from 'node:assert/strict';
import type { Worker } from 'node:cluster';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { beatInterval, HeartbeatMonitor, type Silence, silenceLine } from '../cli/heartbeat.ts';
import { getOnce, isAlive, killAll, repo, tsgi } from './fixtures/cli-process.ts';

const probe = join(repo, 'test/fixtures/sites/probe.ts');
const busy = join(repo, 'test/fixtures/sites/busy.ts');

after(killAll);

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

const SILENT =
  /^tsgi: worker (\d+) sent no heartbeat for ([\d.]+)s \(--timeout 1s: its event loop is blocked\); (.*)$/m;

describe('tsgi serve --workers: the heartbeat', () => {
  it('replaces a worker whose event loop is blocked longer than --timeout, and names the request it held', async () => {
    const server = tsgi(['serve', busy, '--port', '0', '--workers', '2', '--timeout', '1']);
    const url = await server.url();
    const pids = await server.workers(2);
    // It waits 400 ms first (a beat goes out with it held), then blocks its worker for 8 s.
    const held = getOnce(`${url}/spin?after=400&ms=8000`);
    const [silent] = await server.waitFor(SILENT);
    const blocked = Number(silent![1]);
    assert.ok(pids.includes(blocked), `a worker of ${pids} went silent, not ${blocked}`);
    assert.ok(Number(silent![2]) >= 1, `silent for more than --timeout: ${silent![0]}`);
    assert.match(
      silent![3]!,
      /^killed it, starting another; at its last beat it held 1 request\(s\): GET \/spin \(id \S+, running [\d.]+s\)$/,
    );
    await assert.rejects(held, 'the request it held is cut with it');

    const replacement = (await server.workers(3))[2]!;
    assert.ok(!pids.includes(replacement));
    assert.equal(server.stderr.match(/sent no heartbeat/g)?.length, 1, 'one line for the silent worker');
    assert.doesNotMatch(
      server.stderr,
      new RegExp(`worker ${blocked} exited`),
      'and no second one for its exit',
    );
    // Connections are dealt round-robin to the workers: the new one answers within a few.
    const answeredBy = new Set<number>();
    for (let i = 0; i < 6 && !answeredBy.has(replacement); i++) {
      answeredBy.add(Number((await getOnce(`${url}/pid`)).body));
    }
    assert.ok(answeredBy.has(replacement), `the new worker ${replacement} answers (got ${[...answeredBy]})`);
    assert.ok(!answeredBy.has(blocked));

    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.ok(!isAlive(blocked), 'the blocked worker is gone');
    assert.doesNotMatch(server.stderr, /graceful timeout/);
  });

  it('keeps workers that are only busy with async waits, however long', async () => {
    const server = tsgi(['serve', busy, '--port', '0', '--workers', '2', '--timeout', '0.5']);
    const url = await server.url();
    const pids = await server.workers(2);
    // Two streams of 1.5 s (three times --timeout) of timers and writes, one per worker.
    const drips = await Promise.all([getOnce(`${url}/drip?ms=1500`), getOnce(`${url}/drip?ms=1500`)]);
    for (const { status, body } of drips) {
      assert.equal(status, 200);
      const [pid, ...ticks] = body.trimEnd().split('\n');
      assert.ok(pids.includes(Number(pid)), `answered by a first worker (${pid} in ${pids})`);
      assert.ok(ticks.length >= 10 && ticks.every((tick) => tick === 'tick'), body);
    }
    assert.doesNotMatch(server.stderr, /sent no heartbeat|exited/);
    assert.equal(server.stderr.match(/ready/g)?.length, 2, 'no worker was replaced');
    for (const pid of pids) assert.ok(isAlive(pid));
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  it('is off with --timeout 0: a worker blocked for a while still answers', async () => {
    const server = tsgi(['serve', busy, '--port', '0', '--workers', '2', '--timeout', '0']);
    const url = await server.url();
    const pids = await server.workers(2);
    const { status, body } = await getOnce(`${url}/spin?ms=1200`);
    assert.equal(status, 200);
    assert.ok(pids.includes(Number(body)));
    assert.doesNotMatch(server.stderr, /sent no heartbeat|exited/);
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });
});

describe('tsgi serve --workers: stopping', () => {
  it('says once how many requests the workers’ graceful timeout cut in all, and exits 1', async () => {
    const server = tsgi(['serve', probe, '--port', '0', '--workers', '2', '--graceful-timeout', '0.5']);
    const url = await server.url();
    await server.workers(2);
    const streams = await Promise.all([1, 2, 3].map(() => openStream(`${url}/forever`)));
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 1, signal: null });
    assert.match(server.stderr, /^tsgi: graceful timeout \(0\.5s\) cut 3 request\(s\)$/m);
    assert.equal(server.stderr.match(/graceful timeout/g)?.length, 1, server.stderr);
    for (const stream of streams) assert.equal(stream.complete, false, 'the stream was cut');
  });

  it('exits 0 and says nothing of a cut when the workers had nothing to cut', async () => {
    const server = tsgi(['serve', probe, '--port', '0', '--workers', '2', '--graceful-timeout', '0.5']);
    const url = await server.url();
    await server.workers(2);
    assert.equal((await getOnce(`${url}/`)).body, 'probe');
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.doesNotMatch(server.stderr, /graceful timeout|cut/);
  });
});

describe('HeartbeatMonitor', () => {
  const worker = (pid: number) => ({ process: { pid } }) as unknown as Worker;

  it('reports a watched worker that sends no beat for longer than the timeout, once', async () => {
    const calls: Silence[] = [];
    let reported!: () => void;
    const silent = new Promise<void>((resolve) => {
      reported = resolve;
    });
    const monitor = new HeartbeatMonitor(40, (_worker, silence) => {
      calls.push(silence);
      reported();
    });
    try {
      const quiet = worker(1);
      monitor.watch(quiet);
      monitor.receive(quiet, {
        tsgi: 'heartbeat',
        requests: [{ method: 'GET', path: '/x', id: 'a', ageMs: 5 }],
        held: 1,
      });
      await silent;
      assert.equal(calls.length, 1);
      assert.ok(calls[0]!.silentMs > 40);
      assert.equal(calls[0]!.requests[0]!.path, '/x');
      assert.ok(calls[0]!.requests[0]!.ageMs > 40, 'the age runs on through the silence');
    } finally {
      monitor.stop();
    }
  });

  it('does not judge a worker before it is watched (still loading its site)', () => {
    const monitor = new HeartbeatMonitor(40, () => assert.fail('never silent'));
    assert.equal(monitor.receive(worker(2), { tsgi: 'heartbeat', requests: [], held: 0 }), true);
    assert.equal(monitor.receive(worker(2), { tsgi: 'listening', url: 'http://x' }), false);
    monitor.stop();
  });

  it('beats every quarter of the timeout, at most every second', () => {
    assert.equal(beatInterval(1000), 250);
    assert.equal(beatInterval(30_000), 1000);
    assert.equal(beatInterval(2), 1);
  });
});

describe('silenceLine', () => {
  it('names the worker, its silence, and the requests of its last beat', () => {
    const line = silenceLine(
      4242,
      {
        silentMs: 1260,
        requests: [
          { method: 'GET', path: '/report', id: 'r1', ageMs: 1700 },
          { method: 'POST', path: '/upload', id: 'r2', ageMs: 1300 },
        ],
        held: 5,
      },
      1000,
      true,
    );
    assert.equal(
      line,
      'tsgi: worker 4242 sent no heartbeat for 1.3s (--timeout 1s: its event loop is blocked); killed it, ' +
        'starting another; at its last beat it held 5 request(s): GET /report (id r1, running 1.7s), ' +
        'POST /upload (id r2, running 1.3s), and 3 more\n',
    );
  });

  it('says when it held nothing, and does not promise a replacement while stopping', () => {
    assert.equal(
      silenceLine(7, { silentMs: 2000, requests: [], held: 0 }, 1500, false),
      'tsgi: worker 7 sent no heartbeat for 2.0s (--timeout 1.5s: its event loop is blocked); killed it; ' +
        'at its last beat it held no request\n',
    );
  });
});
