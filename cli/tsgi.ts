#!/usr/bin/env node
/**
 * The `tsgi` command: package.json's `bin` runs the built `dist/cli/tsgi.js`, plain JavaScript on
 * Node 20 with no loader. Inside this repository the same file runs from source:
 * `node --import tsx cli/tsgi.ts` (what `npm start` and the CLI tests do).
 *
 * A TypeScript site is loaded through tsx, registered only when one is served (typescript.ts). The
 * process exits explicitly once the server has drained: a site's stray timer must not keep it alive.
 */
import { register } from 'node:module';
import { cliModule } from './launcher.ts';
import { main } from './main.ts';

// A site outside the reach of a node_modules that holds tsgi (one made by `tsgi startproject /tmp/x`)
// still imports 'tsgi': resolve it to this copy.
register(cliModule('resolve-tsgi'));

process.exit(await main(process.argv.slice(2)));
