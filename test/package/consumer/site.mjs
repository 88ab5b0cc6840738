// A JavaScript site for `tsgi serve site.mjs`: no TypeScript loader is needed for it.
import { createHandler } from 'tsgi';
import { helloWorld } from 'tsgi/middleware';

export const application = helloWorld({ text: 'hello from site.mjs' })(
  createHandler(() => new Response('site.mjs', { headers: { 'content-type': 'text/plain' } })),
);
