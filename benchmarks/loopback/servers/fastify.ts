/**
 * Fastify: `fastify()` with its defaults, the routes as its users write them (`reply.headers()`,
 * a returned object for JSON, a returned string, `reply.code(404)`), the layers `onRequest` hooks
 * `(request, reply, done) => done()`.
 *
 * The `cookies` shape sets the two `Set-Cookie` values with `reply.header()`: cookie calls come from
 * the @fastify/cookie plugin, which a plain install does not have.
 */
import Fastify from 'fastify';
import { COOKIES, DATA, NOT_FOUND, TEXT } from '../shapes.ts';
import type { StartServer } from '../targets.ts';
import { portOf } from './listen.ts';

export const start: StartServer = async ({ layers }) => {
  const app = Fastify({ logger: false });
  for (let i = 0; i < layers; i++) app.addHook('onRequest', (_request, _reply, done) => done());
  app.get('/text', (_request, reply) => reply.headers({ 'content-type': 'text/plain' }).send(TEXT));
  app.get('/json', async () => DATA);
  app.get('/bare', async () => TEXT);
  app.get('/cookies', (_request, reply) =>
    reply
      .header('content-type', 'text/plain')
      .header('set-cookie', [...COOKIES])
      .send(TEXT),
  );
  app.get('/missing', (_request, reply) => reply.code(404).send(NOT_FOUND));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: portOf(app.server), server: app.server, close: () => app.close() };
};
