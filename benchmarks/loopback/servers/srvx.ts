/**
 * srvx: `serve({ fetch, middleware })` from srvx's Node adapter, the application a fetch handler as
 * srvx's users write one (routing on `new URL(request.url).pathname`), the layers its `middleware`
 * option, `(request, next) => next()`.
 *
 * The responses are srvx's `FastResponse`, which srvx's Node guide recommends for speed (its own
 * benchmarks use it); `srvx-<n>-undici` answers with the global (undici) `Response` instead, as an
 * application written for any runtime would, and costs several times more (see benchmarks/README.md).
 */
import { FastResponse, type ServerMiddleware, serve } from 'srvx';
import { COOKIES, DATA, NOT_FOUND, TEXT } from '../shapes.ts';
import type { StartServer } from '../targets.ts';
import { portOf } from './listen.ts';

type ResponseClass = { new (body: string, init?: ResponseInit): Response; json(data: unknown): Response };

function site(Reply: ResponseClass): (request: Request) => Response {
  return (request) => {
    switch (new URL(request.url).pathname) {
      case '/text':
        return new Reply(TEXT, { headers: { 'content-type': 'text/plain' } });
      case '/json':
        return Reply.json(DATA);
      case '/bare':
        return new Reply(TEXT);
      case '/cookies': {
        const headers = new Headers({ 'content-type': 'text/plain' });
        for (const cookie of COOKIES) headers.append('set-cookie', cookie);
        return new Reply(TEXT, { headers });
      }
      default:
        return new Reply(NOT_FOUND, { status: 404 });
    }
  };
}

const passThrough: ServerMiddleware = (_request, next) => next();

export const start: StartServer = async ({ layers, fastResponse }) => {
  const server = serve({
    fetch: site(fastResponse ? (FastResponse as unknown as ResponseClass) : Response),
    middleware: Array.from({ length: layers }, () => passThrough),
    port: 0,
    hostname: '127.0.0.1',
    silent: true,
    gracefulShutdown: false,
  });
  await server.ready();
  const node = server.node?.server;
  if (node === undefined) throw new Error('srvx: no Node server after ready()');
  const http = node as import('node:http').Server;
  return { port: portOf(http), server: http, close: () => server.close(true) };
};
