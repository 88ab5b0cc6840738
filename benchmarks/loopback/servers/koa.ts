/**
 * Koa: `new Koa()` with its defaults, the application one middleware switching on `ctx.path` (Koa
 * has no router of its own), answers as Koa's users write them (`ctx.set()` with a headers object,
 * `ctx.body` an object for JSON or a string, `ctx.cookies.set()`, `ctx.status = 404`), the layers
 * `async (ctx, next) => next()`.
 */
import { createServer } from 'node:http';
import Koa from 'koa';
import { COOKIE_CALLS, DATA, NOT_FOUND, TEXT } from '../shapes.ts';
import type { StartServer } from '../targets.ts';
import { listen } from './listen.ts';

export const start: StartServer = async ({ layers }) => {
  const app = new Koa();
  // autocannon hangs up with pipelined requests still in flight, and Koa prints every EPIPE that
  // follows to stderr; printing hundreds of stack traces is not what the benchmark means to measure.
  app.silent = true;
  for (let i = 0; i < layers; i++) app.use(async (_ctx, next) => next());
  app.use((ctx) => {
    switch (ctx.path) {
      case '/text':
        ctx.set({ 'content-type': 'text/plain' });
        ctx.body = TEXT;
        return;
      case '/json':
        ctx.body = DATA;
        return;
      case '/bare':
        ctx.body = TEXT;
        return;
      case '/cookies':
        for (const { name, value, httpOnly } of COOKIE_CALLS) ctx.cookies.set(name, value, { httpOnly });
        ctx.type = 'text/plain';
        ctx.body = TEXT;
        return;
      default:
        ctx.status = 404;
        ctx.body = NOT_FOUND;
    }
  });
  // what app.listen() does, on 127.0.0.1
  return listen(createServer(app.callback()));
};
