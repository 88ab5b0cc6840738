// A module resolve hook, registered by tsgi.js: when 'tsgi' or 'tsgi/…' cannot be resolved from the
// importing module (a site outside any node_modules that holds tsgi), resolve it as a module inside
// this package would, which Node's package self-reference maps through package.json's "exports".
const self = new URL('../package.json', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const ours = specifier === 'tsgi' || specifier.startsWith('tsgi/');
    if (!ours || error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return nextResolve(specifier, { ...context, parentURL: self });
  }
}
