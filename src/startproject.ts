/**
 * `tsgi startproject NAME [DIR]`: writes a small runnable site, as `django-admin startproject` does.
 *
 * The site is three modules and a package.json:
 * - `app.ts` — the application (a plain fetch-style function with two routes);
 * - `settings.ts` — `DEBUG`, `MIDDLEWARE`, `APP`, `WSGI_APPLICATION` (see settings.ts);
 * - `wsgi.ts` — `export const application = await getWsgiApplication(…)`, what servers load;
 * - `package.json` — `"type": "module"` (so Node reads the .ts files as ES modules) and tsgi as a
 *   dependency; left alone when DIR already has one.
 *
 * `tsgi serve DIR/wsgi.ts` and `TSGI_SETTINGS_MODULE=DIR/settings.ts tsgi runserver` serve it at once.
 * The modules import from 'tsgi'; when DIR cannot reach a node_modules that holds tsgi (a site made
 * in /tmp), the `tsgi` launcher resolves 'tsgi' to its own copy (see bin/resolve-tsgi.js).
 *
 * Existing files are never overwritten: the command fails before writing anything.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** Raised when the project cannot be created; the message is one line for the terminal. */
export class StartProjectError extends Error {
  override name = 'StartProjectError';
}

/** What {@link startProject} wrote. */
export interface StartedProject {
  readonly dir: string;
  readonly files: readonly string[];
  /** Things the developer should fix by hand (an existing package.json that is not ESM). */
  readonly notes: readonly string[];
}

/** True when `name` can name a project: letters, digits, '-' and '_', starting with a letter. */
export function isProjectName(name: string): boolean {
  return /^[A-Za-z][\w-]*$/.test(name);
}

/**
 * Writes a new site called `name` into `dir` (default `./name`).
 *
 * @example
 * const { dir } = await startProject('mysite');
 * // tsgi serve mysite/wsgi.ts
 */
export async function startProject(
  name: string,
  dir?: string,
  options: { cwd?: string; version?: string } = {},
): Promise<StartedProject> {
  if (!isProjectName(name)) {
    throw new StartProjectError(
      `tsgi: '${name}' is not a valid project name: use letters, digits, '-' and '_', starting with a letter`,
    );
  }
  const target = resolve(options.cwd ?? process.cwd(), dir ?? name);
  const files: Record<string, string> = {
    'app.ts': app(name),
    'settings.ts': settings(name),
    'wsgi.ts': wsgi(name),
  };
  for (const file of Object.keys(files)) {
    if (existsSync(join(target, file))) {
      throw new StartProjectError(`tsgi: ${join(target, file)} already exists; not overwriting it`);
    }
  }
  const notes: string[] = [];
  const manifest = join(target, 'package.json');
  if (!existsSync(manifest)) files['package.json'] = packageJson(name, options.version);
  else if (!isModulePackage(manifest)) {
    notes.push(
      `${manifest} has no "type": "module": add it, or Node will not load the .ts files as ES modules`,
    );
  }
  await mkdir(target, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(target, file), text, { flag: 'wx' });
  return { dir: target, files: Object.keys(files), notes };
}

function isModulePackage(manifest: string): boolean {
  try {
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: unknown }).type === 'module';
  } catch {
    return false; // unreadable or not JSON: the note tells the developer to look at it
  }
}

const app = (name: string): string => `/**
 * The ${name} application: a fetch-style function (request, context) => Response.
 * Any framework that speaks fetch (Hono, itty-router, …) can take its place in settings.ts.
 */
import type { Application } from 'tsgi';

export const app: Application = (request) => {
  const { pathname } = new URL(request.url);
  if (pathname === '/') {
    return new Response('Hello from ${name}\\n', { headers: { 'content-type': 'text/plain; charset=utf-8' } });
  }
  if (pathname === '/api/time') return Response.json({ now: new Date().toISOString() });
  return new Response('Not Found\\n', { status: 404 });
};
`;

const settings = (name: string): string => `/**
 * Settings of ${name}. getWsgiApplication() builds the site from them:
 * createHandler(APP, { middleware: MIDDLEWARE, debug: DEBUG }).
 */
import type { Middleware } from 'tsgi';
import { app } from './app.ts';

// SECURITY WARNING: don't run with debug turned on in production!
export const DEBUG = true;

/** Middleware, outermost first (for example gzip() from 'tsgi/middleware'). */
export const MIDDLEWARE: Middleware[] = [];

export const APP = app;

/** What \`tsgi runserver\` serves: path:attr, the path relative to this file. */
export const WSGI_APPLICATION = './wsgi.ts:application';
`;

const wsgi = (name: string): string => `/**
 * The entry point of ${name} that servers load: \`tsgi serve wsgi.ts\`.
 *
 * It builds the site from the settings module named by TSGI_SETTINGS_MODULE, else ./settings.ts.
 * Wrap it in middleware here, WSGI style: make it \`let\` and add
 * \`application = someMiddleware()(application);\`.
 */
import { getWsgiApplication } from 'tsgi';

export const application = await getWsgiApplication({
  settings: process.env.TSGI_SETTINGS_MODULE ?? new URL('./settings.ts', import.meta.url),
});
`;

const packageJson = (name: string, version = '*'): string =>
  `${JSON.stringify(
    {
      name: name.toLowerCase(),
      private: true,
      type: 'module',
      scripts: { start: 'tsgi serve wsgi.ts', dev: 'TSGI_SETTINGS_MODULE=settings.ts tsgi runserver' },
      dependencies: { tsgi: version === '*' ? '*' : `^${version}` },
    },
    null,
    2,
  )}\n`;
