// A TypeScript site for `tsgi serve site.ts`: the CLI loads it through tsx.
import { type Application, createHandler } from 'tsgi';
import { helloWorld } from 'tsgi/middleware';

const app: Application = (request) => new Response(`site.ts ${new URL(request.url).pathname}`);
export let application: Application = createHandler(app);
application = helloWorld({ text: 'hello from site.ts' })(application);
