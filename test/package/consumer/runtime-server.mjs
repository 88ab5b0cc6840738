// `export default { fetch }` for Bun (`bun run`, which reads port and hostname from the export) and
// Deno (`deno serve --port N`, which ignores them). Each request_finished is printed as a JSON line.
import { createHandler, signals } from 'tsgi';
import { helloWorld } from 'tsgi/middleware';

signals.connect('request_finished', ({ request, status, outcome, bytesSent }) => {
  const path = new URL(request.url).pathname;
  console.log(JSON.stringify({ event: 'request_finished', path, status, outcome, bytesSent }));
});
const handler = createHandler(() => new Response('from the runtime'), { middleware: [helloWorld()] });
const port = Number(globalThis.Bun?.env.PORT ?? 0);
export default { fetch: handler.fetch, port, hostname: '127.0.0.1' };
