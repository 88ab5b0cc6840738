/**
 * What a graceful stop cut. On SIGTERM a server stops accepting connections and gives its in-flight
 * requests the graceful timeout; serve()'s `close()` then cuts the ones still running. The CLI says
 * how many it cut, `tsgi: graceful timeout (30s) cut 3 request(s)`, and exits 1, so that a deploy
 * which dropped requests does not look like a clean one. A stop that cut nothing exits 0.
 *
 * A worker tells its master the count over IPC instead of printing it; the master adds up what its
 * workers cut and prints one line.
 *
 * How many were cut: what serve()'s `close()` resolves with (`{ cut }`, the requests still in flight
 * when its graceful timeout ran out).
 */
import cluster from 'node:cluster';
import type { Output } from './supervisor.ts';

/** What a worker tells its master when its graceful timeout cut requests. */
interface CutMessage {
  tsgi: 'cut';
  count: number;
}

export function isCutMessage(message: unknown): message is CutMessage {
  return (message as CutMessage | null)?.tsgi === 'cut' && typeof (message as CutMessage).count === 'number';
}

/** The line that says what the graceful timeout cut. */
export function cutLine(count: number, gracefulTimeoutMs: number): string {
  return `tsgi: graceful timeout (${gracefulTimeoutMs / 1000}s) cut ${count} request(s)\n`;
}

/**
 * Says that `count` requests were cut: to the master, in a worker (it prints the total of all its
 * workers), else as a line on `stderr`. Resolves once the message is written to the channel, so that
 * the worker may exit (the master reads its workers' channels to the end before it prints the total).
 */
export async function reportCut(count: number, gracefulTimeoutMs: number, stderr: Output): Promise<void> {
  if (cluster.isWorker && process.connected && process.send !== undefined) {
    const message: CutMessage = { tsgi: 'cut', count };
    const sent = await new Promise<boolean>((resolve) => {
      process.send!(message, undefined, undefined, (error: Error | null) => resolve(error === null));
    });
    if (sent) return;
  }
  stderr.write(cutLine(count, gracefulTimeoutMs));
}
