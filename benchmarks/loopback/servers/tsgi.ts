/**
 * tsgi: `serve(createHandler(app, { middleware, signals }))`, the application written as tsgi's users
 * write one — a function from `Request` to `Response`, routing on `new URL(request.url).pathname`.
 *
 * Every layer count has a receiver on `request_started` and one on `request_finished`, so each
 * request goes through the whole lifecycle (the request scope, both signals, a boundary per layer,
 * body tracking, the close). `fastResponse: false` is the `tsgi-10-undici` target: the global
 * `Response` is left alone, so the application's responses are undici's own.
 */
import { type Application, createHandler, type Middleware, SignalBus, serve } from '../../../src/index.ts';
import { COOKIES, DATA, NOT_FOUND, TEXT } from '../shapes.ts';
import type { StartServer } from '../targets.ts';

const app: Application = (request) => {
  switch (new URL(request.url).pathname) {
    case '/text':
      return new Response(TEXT, { headers: { 'content-type': 'text/plain' } });
    case '/json':
      return Response.json(DATA);
    case '/bare':
      return new Response(TEXT);
    case '/cookies': {
      const headers = new Headers({ 'content-type': 'text/plain' });
      for (const cookie of COOKIES) headers.append('set-cookie', cookie);
      return new Response(TEXT, { headers });
    }
    default:
      return new Response(NOT_FOUND, { status: 404 });
  }
};

const passThrough: Middleware = (next) => (request, context) => next(request, context);

export const start: StartServer = async ({ layers, fastResponse }) => {
  const signals = new SignalBus();
  let started = 0;
  let finished = 0;
  signals.connect('request_started', () => {
    started++;
  });
  signals.connect('request_finished', () => {
    finished++;
  });
  const middleware = Array.from({ length: layers }, () => passThrough);
  const server = await serve(createHandler(app, { middleware, signals }), {
    port: 0,
    host: '127.0.0.1',
    fastResponse,
  });
  return {
    port: server.port,
    server: server.server,
    async close() {
      await server.close();
      // The benchmark measures the lifecycle, so a lost signal is a failure, not a footnote.
      if (started !== finished) throw new Error(`tsgi: ${started} requests started, ${finished} finished`);
    },
  };
};
