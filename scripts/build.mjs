// `npm run build` (and `npm pack`, through prepack): compiles src/, middleware/ and cli/ to dist/ as
// ESM .js with .d.ts and source maps, using the TypeScript in devDependencies.
//
// tsc rewrites the sources' relative `.ts` import paths to `.js` in the JavaScript it emits
// (rewriteRelativeImportExtensions) but not in declarations, which would then name files the package
// does not ship; so the same rewrite is applied to every emitted .d.ts here.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const manifest = createRequire(import.meta.url).resolve('typescript/package.json');
const tsc = join(dirname(manifest), JSON.parse(readFileSync(manifest, 'utf8')).bin.tsc);

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
  cwd: root,
});

// `from './x.ts'`, `import('./x.ts')`: only relative specifiers, only the extension.
const RELATIVE_TS = /((?:from|import)\s*\(?\s*['"]\.{1,2}\/[^'"]*?)\.ts(['"])/g;
let files = 0;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const file = join(entry.parentPath, entry.name);
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(RELATIVE_TS, '$1.js$2');
  if (fixed !== text) writeFileSync(file, fixed);
  files++;
}
if (files === 0) throw new Error('build: tsc emitted no declarations');
process.stdout.write(`build: dist/ written (${files} declaration files)\n`);
