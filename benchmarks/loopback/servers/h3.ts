/**
 * h3 (v2): `new H3()` with its router, served by h3's `serve()` (srvx underneath), the routes as h3's
 * users write them (headers and status on `event.res`, a returned object for JSON, a returned string,
 * `setCookie()`), the layers `app.use((event, next) => next())`.
 */
import { H3, serve, setCookie } from 'h3';
import { COOKIE_CALLS, DATA, NOT_FOUND, TEXT } from '../shapes.ts';
import type { StartServer } from '../targets.ts';
import { portOf } from './listen.ts';

export const start: StartServer = async ({ layers }) => {
  const app = new H3();
  for (let i = 0; i < layers; i++) app.use((_event, next) => next());
  app.get('/text', (event) => {
    event.res.headers.set('content-type', 'text/plain');
    return TEXT;
  });
  app.get('/json', () => DATA);
  app.get('/bare', () => TEXT);
  app.get('/cookies', (event) => {
    for (const { name, value, httpOnly } of COOKIE_CALLS) setCookie(event, name, value, { httpOnly });
    event.res.headers.set('content-type', 'text/plain');
    return TEXT;
  });
  app.get('/missing', (event) => {
    event.res.status = 404;
    return NOT_FOUND;
  });
  const server = serve(app, { port: 0, hostname: '127.0.0.1', silent: true, gracefulShutdown: false });
  await server.ready();
  const node = server.node?.server;
  if (node === undefined) throw new Error('h3: no Node server after ready()');
  const http = node as import('node:http').Server;
  return { port: portOf(http), server: http, close: () => server.close(true) };
};
