/**
 * A module resolve hook that the launcher registers, so that a site always reaches this copy of tsgi:
 * - installed (`dist/cli/resolve-tsgi.js`): when 'tsgi' or 'tsgi/…' cannot be resolved from the
 *   importing module (a site outside any node_modules that holds tsgi), it is resolved as a module
 *   inside this package would resolve it, through package.json's "exports" (into dist/);
 * - in this repository (`cli/resolve-tsgi.ts`, run under tsx): 'tsgi', 'tsgi/host' and
 *   'tsgi/middleware' are this checkout's TypeScript sources, so nothing needs building first and
 *   package.json's "exports" name only what the package ships.
 *
 * It runs on Node's module-hooks thread, so it imports nothing of tsgi's.
 */
import type { ResolveHook } from 'node:module';

const fromSources = import.meta.url.endsWith('.ts');
const root = new URL(fromSources ? '../' : '../../', import.meta.url);
const self = new URL('package.json', root).href;
const SOURCES: Readonly<Record<string, string>> = {
  tsgi: 'src/index.ts',
  'tsgi/host': 'src/host.ts',
  'tsgi/middleware': 'middleware/index.ts',
};

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  const source = fromSources ? SOURCES[specifier] : undefined;
  if (source !== undefined) return nextResolve(new URL(source, root).href, context);
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const ours = specifier === 'tsgi' || specifier.startsWith('tsgi/');
    if (!ours || (error as { code?: unknown } | null)?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return nextResolve(specifier, { ...context, parentURL: self });
  }
};
