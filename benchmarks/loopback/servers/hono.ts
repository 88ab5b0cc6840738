/**
 * Hono on @hono/node-server: `serve({ fetch: app.fetch })` with its defaults (it swaps in its light
 * global `Request` and `Response`), the routes as Hono's users write them (`c.body()` with a headers
 * object, `c.json()`, `c.text()`, `setCookie()` from hono/cookie), the layers
 * `app.use(async (c, next) => { await next() })`.
 */
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import { COOKIE_CALLS, DATA, NOT_FOUND, TEXT } from '../shapes.ts';
import type { StartServer } from '../targets.ts';
import { listen } from './listen.ts';

export const start: StartServer = async ({ layers }) => {
  const app = new Hono();
  for (let i = 0; i < layers; i++) {
    app.use(async (_c, next) => {
      await next();
    });
  }
  app.get('/text', (c) => c.body(TEXT, 200, { 'content-type': 'text/plain' }));
  app.get('/json', (c) => c.json(DATA));
  app.get('/bare', (c) => c.text(TEXT));
  app.get('/cookies', (c) => {
    for (const { name, value, httpOnly } of COOKIE_CALLS) setCookie(c, name, value, { httpOnly, path: '/' });
    return c.body(TEXT, 200, { 'content-type': 'text/plain' });
  });
  app.get('/missing', (c) => c.text(NOT_FOUND, 404));
  // what serve() does, on 127.0.0.1 at a free port
  return listen(createAdaptorServer({ fetch: app.fetch }) as import('node:http').Server);
};
