/**
 * Listening for the server files: a `node:http` server on 127.0.0.1 at a free port, closed with its
 * idle keep-alive connections (autocannon leaves none open, but a test's client may).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StartedServer } from '../targets.ts';

/** Listens on 127.0.0.1 at a free port and resolves with the port and a close(). */
export async function listen(server: Server): Promise<StartedServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { port: portOf(server), server, close: () => closeServer(server) };
}

/** The port a listening server is bound to. */
export function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** Closes a server and its idle connections. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
