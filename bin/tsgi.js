#!/usr/bin/env node
// The `tsgi` command. tsgi's sources are TypeScript, run by tsx, so this launcher first registers
// tsx's loader in this very process (importing 'tsx' calls node:module's register(), as
// `node --import tsx` does) instead of re-executing `node --import tsx`: the server is then this
// process, so a process manager's SIGTERM reaches it directly with no second process to forward it,
// and cluster workers and reload children, which run this file again, register it the same way.
// tsx is therefore needed at run time, not only in development.
import { register } from 'node:module';

try {
  await import('tsx');
} catch (error) {
  process.stderr.write(
    `tsgi: cannot load tsx, which runs tsgi's TypeScript (${error.message}); run npm install\n`,
  );
  process.exit(1);
}
// A site outside the reach of a node_modules that holds tsgi (one made by `tsgi startproject /tmp/x`)
// still imports 'tsgi': resolve it to this copy.
register('./resolve-tsgi.js', import.meta.url);

const { main } = await import('../src/cli.ts');
// Exit explicitly: once the server has drained, a site's stray timer must not keep the process alive.
process.exit(await main(process.argv.slice(2)));
