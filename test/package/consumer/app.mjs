// Plain Node, no loader: import the installed package, serve, answer, and see the signals fire.
import { createHandler, serve, signals } from 'tsgi';
import { RequestScope } from 'tsgi/host';
import { gzip, helloWorld } from 'tsgi/middleware';

const events = [];
signals.connect('request_started', ({ request }) => events.push(`started ${new URL(request.url).pathname}`));
signals.connect('request_finished', ({ request, status, outcome }) =>
  events.push(`finished ${new URL(request.url).pathname} ${status} ${outcome}`),
);
const handler = createHandler(() => new Response('from the app'), { middleware: [gzip(), helloWorld()] });
const server = await serve(handler, { port: 0, host: '127.0.0.1' });
const hello = await (await fetch(`${server.url}/hello`)).text();
const other = await (await fetch(`${server.url}/other`)).text();
await server.close();
const scope = new RequestScope({ remoteAddress: '127.0.0.1' });
const answer = await handler(new Request('http://localhost/hello'), scope.context);
scope.status = answer.status;
const hosted = await answer.text();
scope.end('completed');
await new Promise((resolve) => setImmediate(resolve));
events.push(`hosted ${hosted}`);
process.stdout.write(`${JSON.stringify({ hello, other, events, inFlight: handler.inFlight })}\n`);
