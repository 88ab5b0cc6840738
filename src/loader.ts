/**
 * Loading a site's code by name: `importModule()` for any module a server is pointed at, and
 * `loadApplication('path/to/wsgi.ts[:attr]')` for the application a server runs (gunicorn's
 * `module:app`).
 *
 * A name is a file path when it is absolute, starts with `.`, ends with a script extension or is a
 * `file:` URL; relative paths are resolved against `cwd` (default `process.cwd()`), and a path
 * without an extension also finds `path.ts` and `path.js`. Any other name (`mysite/wsgi`) is a file
 * when there is one by that name under `cwd`, else a package specifier, imported as `import()` would
 * from here (so from the node_modules that hold tsgi).
 *
 * Every failure is a {@link LoadError} whose one-line message says which module, what went wrong,
 * and what the developer probably meant, instead of the loader's raw stack. Loading runs the module's
 * top-level code, so it is async; the module system caches modules, so loading twice is cheap and
 * returns the same objects.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe } from './report.ts';
import type { Application } from './types.ts';

/** Raised when a module or the application in it cannot be loaded. */
export class LoadError extends Error {
  override name = 'LoadError';
  constructor(
    message: string,
    /** The module as it was named. */
    readonly module: string,
    options?: { cause?: unknown; file?: string },
  ) {
    super(message, options);
    this.file = options?.file;
  }

  /** The file the module was loaded from, when it is one. */
  readonly file: string | undefined;
}

/** Where to resolve relative paths, and what to call the module in error messages. */
export interface ImportOptions {
  /** Directory relative paths are resolved against. Default: `process.cwd()`. */
  cwd?: string;
  /** What the module is, for messages ("settings module"). Default: "module". */
  kind?: string;
}

const SCRIPT = /\.(?:[cm]?[jt]s|tsx|jsx)$/;

/** True when `name` names a file rather than a package. */
export function isPathLike(name: string): boolean {
  return isAbsolute(name) || name.startsWith('.') || name.startsWith('file:') || SCRIPT.test(name);
}

/** A loaded module: its exports, and the URL it was loaded from. */
export interface LoadedModule {
  readonly exports: Record<string, unknown>;
  /** A `file:` URL for a path; the specifier for a package. */
  readonly url: string;
}

/**
 * Imports the module `name` (a path, a `file:` URL or a package specifier), with clear errors.
 *
 * @example
 * const { exports } = await importModule('mysite/settings.ts', { kind: 'settings module' });
 */
export async function importModule(name: string | URL, options: ImportOptions = {}): Promise<LoadedModule> {
  const label = moduleLabel(name);
  const kind = options.kind ?? 'module';
  const file = locateModule(name, options);
  const specifier = file === undefined ? label : pathToFileURL(file).href;
  try {
    return { exports: (await import(specifier)) as Record<string, unknown>, url: specifier };
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    // Our own errors from the module's top level (a wsgi.ts whose settings are wrong) are clear already.
    if (error instanceof Error && error.message.startsWith('tsgi: ')) throw error;
    if (file === undefined && code === 'ERR_MODULE_NOT_FOUND' && mentions(error, packageName(label))) {
      throw new LoadError(
        `tsgi: ${kind} '${label}' was not found (not a file path, and no package of that name is installed; use ./${label} for a file)`,
        label,
        { cause: error },
      );
    }
    // A compiler's message (tsx's esbuild) names the place itself.
    const at = /\/[^\s:]+:\d+/.test(describe(error)) ? undefined : thrownAt(error);
    const hint = file === undefined ? undefined : commonJsHint(file);
    throw new LoadError(
      `tsgi: ${kind} '${label}' failed to load: ${oneLine(error)}${at === undefined ? '' : ` (at ${at})`}${hint === undefined ? '' : ` — ${hint}`}`,
      label,
      { cause: error, ...(file === undefined ? {} : { file }) },
    );
  }
}

/**
 * The file a module name stands for: an absolute path for a path or `file:` URL (a {@link LoadError}
 * if there is no such file) or for a bare name that is a file under `cwd`; `undefined` for a package.
 *
 * @example
 * locateModule('mysite/settings.ts'); // '/home/me/mysite/settings.ts'
 */
export function locateModule(name: string | URL, options: ImportOptions = {}): string | undefined {
  const label = moduleLabel(name);
  if (!(name instanceof URL) && !isPathLike(label))
    return findFile(resolve(options.cwd ?? process.cwd(), label));
  const path = name instanceof URL ? fileURLToPath(name) : resolveFile(label, options.cwd);
  const file = findFile(path);
  if (file === undefined) {
    throw new LoadError(
      `tsgi: ${options.kind ?? 'module'} '${label}' was not found (no file at ${path})`,
      label,
    );
  }
  return file;
}

/** `path/to/wsgi.ts:attr` split into its module and attribute (none when there is no `:attr`). */
export function parseApplicationSpec(spec: string): { module: string; attr: string | undefined } {
  const match = /^(.+?):([A-Za-z_$][\w$]*)$/.exec(spec);
  // `C:\site\wsgi.ts` and `file:///…` contain colons too; only a trailing identifier is an attr.
  if (match === null || /^[A-Za-z]$/.test(match[1]!)) return { module: spec, attr: undefined };
  return { module: match[1]!, attr: match[2] };
}

/**
 * Loads the application named by `path/to/wsgi.ts[:attr]`. Without `:attr` it takes the export
 * `application`, else the default export. The value may be an application function (a tsgi
 * `Handler` too) or an object with a `fetch` method (`export default { fetch }`, a Hono app), which
 * is adapted to an application that passes it the request.
 *
 * @example
 * const application = await loadApplication('examples/mysite/wsgi.ts');
 * const hono = await loadApplication('./server.ts:app');
 */
export async function loadApplication(spec: string, options: ImportOptions = {}): Promise<Application> {
  const { module, attr } = parseApplicationSpec(spec);
  const { exports } = await importModule(module, options);
  const name = attr ?? ('application' in exports ? 'application' : 'default');
  if (!(name in exports)) {
    const hint = attr
      ? `its exports are: ${Object.keys(exports).join(', ') || '(none)'}`
      : 'export let application = … (or a default export), or name another export with path:attr';
    throw new LoadError(
      `tsgi: module '${module}' has no export '${attr ?? 'application'}'${attr ? '' : ' and no default export'} — ${hint}`,
      module,
    );
  }
  return toApplication(await exports[name], `export '${name}' of '${module}'`, module);
}

/**
 * Adapts an application-like value: a function is used as it is; an object with a `fetch` method
 * becomes an application that calls it with the request. Anything else is a {@link LoadError}.
 *
 * @example
 * const application = toApplication(honoApp, 'APP');
 */
export function toApplication(value: unknown, what: string, module = what): Application {
  if (typeof value === 'function') return value as Application;
  if (value !== null && typeof value === 'object' && typeof (value as Fetcher).fetch === 'function') {
    const target = value as Fetcher;
    return function fetchApplication(request: Request): Response | Promise<Response> {
      // Only the request: a foreign fetch's second argument (Hono's env, Deno's info) is not ours.
      return target.fetch(request);
    };
  }
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
  throw new LoadError(
    `tsgi: ${what} is ${got}, not an application — expected a function (request, context) => Response or an object with a fetch(request) method`,
    module,
  );
}

interface Fetcher {
  fetch(request: Request): Response | Promise<Response>;
}

/** How a module is named in messages: a `file:` URL as its path. */
export function moduleLabel(name: string | URL): string {
  return name instanceof URL && name.protocol === 'file:' ? fileURLToPath(name) : String(name);
}

/** One line for an error, for a terminal: a loader's multi-line message is folded. */
export function oneLine(error: unknown): string {
  return describe(error).replace(/\s*\n\s*/g, ' ');
}

/**
 * Where a module's top-level code threw, as `path:line:column`: the first stack frame in the site's
 * own files (not Node's internals, not node_modules), else the first frame in any file. A syntax
 * error in an ES module names its file on the stack's first line instead. Undefined when the stack
 * names no file (a thrown string, a frozen stack).
 *
 * @example
 * thrownAt(error); // '/home/me/mysite/settings.ts:12:9'
 */
export function thrownAt(error: unknown): string | undefined {
  const stack = error instanceof Error && typeof error.stack === 'string' ? error.stack : '';
  const places: string[] = [];
  const header = SYNTAX_HEADER.exec(stack.split('\n', 1)[0] ?? '');
  if (header !== null) places.push(pathOf(header[1]!) + header[2]);
  for (const [, file, position] of stack.matchAll(FRAME)) places.push(pathOf(file!) + position);
  return places.find((place) => !place.includes('/node_modules/')) ?? places[0];
}

/**
 * Why a `.ts` or `.js` module may have failed: Node reads it as CommonJS when the nearest
 * package.json has no `"type": "module"` (an `npm init -y` project), and then its imports of ES
 * modules and its top-level await fail with messages that do not say so.
 */
function commonJsHint(file: string): string | undefined {
  if (!/\.(?:ts|js|tsx|jsx)$/.test(file)) return undefined;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      let type: unknown;
      try {
        type = (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: unknown }).type;
      } catch {
        return undefined; // not ours to judge; the error above says what failed
      }
      return type === 'module'
        ? undefined
        : `${manifest} has no "type": "module", so Node loads ${file} as CommonJS: run \`npm pkg set type=module\` there`;
    }
    if (dirname(dir) === dir) {
      return `no package.json above ${file}, so Node loads it as CommonJS: add one with "type": "module"`;
    }
  }
}

/** `    at fn (file:///site/wsgi.ts:3:9)` or `    at /site/wsgi.js:3:9`: the file and `:line:column`. */
const FRAME = /^\s+at (?:.*?\()?((?:file:\/\/)?\/[^():]+)((?::\d+){1,2})\)?$/gm;
/** `file:///site/wsgi.mjs:2`, the first line of an ES module's syntax error. */
const SYNTAX_HEADER = /^((?:file:\/\/)?\/\S+?)(:\d+)\s*$/;

function pathOf(file: string): string {
  return file.startsWith('file:') ? fileURLToPath(file) : file;
}

function resolveFile(name: string, cwd = process.cwd()): string {
  return name.startsWith('file:') ? fileURLToPath(name) : resolve(cwd, name);
}

function findFile(file: string): string | undefined {
  if (isFile(file)) return file;
  if (SCRIPT.test(file)) return undefined;
  for (const extension of ['.ts', '.js']) if (isFile(file + extension)) return file + extension;
  return undefined;
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

/** `pkg` of `pkg/sub/path`, `@scope/pkg` of `@scope/pkg/sub`. */
function packageName(specifier: string): string {
  return specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');
}

function mentions(error: unknown, text: string): boolean {
  return error instanceof Error && error.message.includes(`'${text}'`);
}
