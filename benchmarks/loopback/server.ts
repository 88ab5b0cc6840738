/**
 * One target's server process: `node --import tsx benchmarks/loopback/server.ts <target>`, started by
 * launch.ts with an IPC channel, never by hand.
 *
 * It starts the target's server on 127.0.0.1 at a free port and then answers the parent over IPC:
 * `ready` (with the port) once listening; for `begin` it takes `process.cpuUsage()` and says `begun`;
 * for `end` it answers `cpu` with the user + system microseconds used since `begin`, every thread of
 * the process included (the GC's and libuv's too), and the requests the server received since then
 * (counted on the `node:http` server's `'request'` event, under every framework); for
 * `stop` it closes the server and exits (1 when closing failed, for example a tsgi target whose
 * signals did not balance). It exits too when the parent goes away.
 */
import { parseTarget, type StartServer } from './targets.ts';

export type ToServer = { type: 'begin' } | { type: 'end' } | { type: 'stop' };
export type FromServer =
  | { type: 'ready'; port: number }
  | { type: 'begun' }
  | { type: 'cpu'; micros: number; requests: number }
  | { type: 'failed'; message: string };

function send(message: FromServer): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  if (process.send === undefined) {
    console.error('benchmarks/loopback/server.ts runs as a child of the driver (it needs an IPC channel)');
    process.exit(2);
  }
  const target = parseTarget(process.argv[2] ?? '');
  const { start } = (await import(`./servers/${target.framework}.ts`)) as { start: StartServer };
  const server = await start(target);
  // The load generator cannot say how many requests a pipelined run left in flight when it stopped;
  // the server can. One more 'request' listener costs every target the same few tens of nanoseconds.
  let requests = 0;
  server.server.prependListener('request', () => {
    requests++;
  });
  let from: NodeJS.CpuUsage | undefined;
  let counted = 0;
  process.on('message', (message: ToServer) => {
    if (message.type === 'begin') {
      from = process.cpuUsage();
      counted = requests;
      send({ type: 'begun' });
    } else if (message.type === 'end') {
      const used = process.cpuUsage(from);
      send({ type: 'cpu', micros: used.user + used.system, requests: requests - counted });
    } else if (message.type === 'stop') {
      server.close().then(
        () => process.exit(0),
        (error: unknown) => {
          send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
          process.exit(1);
        },
      );
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', port: server.port });
}

main().catch((error: unknown) => {
  send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
});
