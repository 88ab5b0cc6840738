/**
 * The example site's application: a plain fetch-style function with a few routes, each showing one
 * kind of response a tsgi server handles.
 *
 * - `GET /` — plain text;
 * - `GET /api/time` — JSON;
 * - `GET /stream` — a streamed body, one line every 100 ms; it stops early if the client leaves;
 * - `GET /boom` — throws, so the handler answers 500 (with the stack, since DEBUG is on).
 */
import type { Application } from 'tsgi';

const text = { 'content-type': 'text/plain; charset=utf-8' };

export const app: Application = (request) => {
  const { pathname } = new URL(request.url);
  switch (pathname) {
    case '/':
      return new Response('Welcome to mysite, served by tsgi.\n', { headers: text });
    case '/api/time':
      return Response.json({ now: new Date().toISOString() });
    case '/stream':
      return new Response(countdown(5), { headers: text });
    case '/boom':
      throw new Error('boom: /boom always fails, to show the error page');
    default:
      return new Response('Not Found\n', { status: 404, headers: text });
  }
};

/** `from` lines, 100 ms apart; cancelling the stream (the client left) stops the timer. */
function countdown(from: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let left = from;
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      return new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          controller.enqueue(encoder.encode(`${left}\n`));
          if (--left === 0) controller.close();
          resolve();
        }, 100);
      });
    },
    cancel() {
      clearTimeout(timer);
    },
  });
}
