/**
 * Loading a site written in TypeScript. Node 20 cannot import `.ts` files, so before the CLI imports
 * a site's `.ts`, `.mts` or `.cts` module it registers tsx's module hooks in this process (as
 * `node --import tsx` would). tsx is a dependency of tsgi, but it is imported here only, and only
 * for a TypeScript site: a `.js` or `.mjs` site starts without it, and the library never needs it.
 *
 * Registering in-process rather than re-executing `node --import tsx` keeps the server this very
 * process, so a process manager's SIGTERM reaches it directly; workers and reload children run the
 * launcher again and register the same way.
 */
import { LoadError } from '../src/loader.ts';
import { FROM_SOURCES } from './launcher.ts';

const TYPESCRIPT = /\.(?:[cm]?ts|tsx)$/i;

let registered = false;

/** True when `file` is a TypeScript module the CLI can only import through tsx. */
export function isTypeScript(file: string | URL | undefined): boolean {
  return file !== undefined && TYPESCRIPT.test(String(file));
}

/**
 * Makes sure the modules named can be imported: registers tsx once if any of them is TypeScript.
 * From tsgi's own sources a TypeScript loader already runs, so nothing is registered.
 *
 * @example
 * await supportTypeScript(locateModule('wsgi.ts'));
 */
export async function supportTypeScript(...files: (string | URL | undefined)[]): Promise<void> {
  if (registered || FROM_SOURCES || !files.some(isTypeScript)) return;
  let api: typeof import('tsx/esm/api');
  try {
    api = await import('tsx/esm/api');
  } catch (error) {
    throw new LoadError(
      `tsgi: a TypeScript site needs tsx, which did not load (${error instanceof Error ? error.message : String(error)}); reinstall tsgi, or serve a .js/.mjs site`,
      String(files.find(isTypeScript)),
      { cause: error },
    );
  }
  api.register();
  registered = true;
}
