/**
 * A module resolve hook that the launcher registers: when 'tsgi' or 'tsgi/…' cannot be resolved from
 * the importing module (a site outside any node_modules that holds tsgi), it is resolved as a module
 * inside this package would resolve it, which Node's package self-reference maps through
 * package.json's "exports" — to dist/ when installed, to the sources under the `tsgi-source` condition.
 *
 * It runs on Node's module-hooks thread, so it imports nothing of tsgi's.
 */
import type { ResolveHook } from 'node:module';

// cli/resolve-tsgi.ts in the repository, dist/cli/resolve-tsgi.js when built.
const root = import.meta.url.endsWith('.ts') ? '../' : '../../';
const self = new URL(`${root}package.json`, import.meta.url).href;

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const ours = specifier === 'tsgi' || specifier.startsWith('tsgi/');
    if (!ours || (error as { code?: unknown } | null)?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return nextResolve(specifier, { ...context, parentURL: self });
  }
};
