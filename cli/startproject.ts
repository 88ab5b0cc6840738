/**
 * `tsgi startproject NAME [DIR]`: writes a small runnable site, as `django-admin startproject` does.
 *
 * The site is three modules, a package.json and a tsconfig.json:
 * - `app.ts` — the application (a plain fetch-style function with two routes);
 * - `settings.ts` — `DEBUG`, `MIDDLEWARE`, `APP`, `WSGI_APPLICATION` (see src/settings.ts);
 * - `wsgi.ts` — `export const application = await getWsgiApplication(…)`, what servers load;
 * - `package.json` — an ES module package (`"type": "module"`, which the `.ts` modules and their
 *   top-level await need), tsgi as a dependency, `npm start` (`tsgi serve wsgi.ts`) and `npm run dev`
 *   (`tsgi runserver`); left alone when DIR already has one;
 * - `tsconfig.json` — strict, `nodenext`, `.ts` import paths allowed, so an editor or `tsc` checks
 *   the site as tsx runs it; left alone when DIR already has one.
 *
 * On a fresh machine `npm install && npm start` serves it. Inside a checkout, `tsgi serve DIR/wsgi.ts`
 * serves it at once too: when DIR cannot reach a node_modules that holds tsgi (a site made in /tmp),
 * the `tsgi` launcher resolves 'tsgi' to its own copy (see cli/resolve-tsgi.ts).
 *
 * Existing files are never overwritten: the command fails before writing anything.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SETTINGS_ENV } from '../src/settings.ts';
import { HELP_OPTION, parsing, UsageError } from './args.ts';
import type { CliIO } from './main.ts';
import { HELP, VERSION } from './usage.ts';

export async function startprojectCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parsing(() =>
    parseArgs({ args, allowPositionals: true, options: { help: HELP_OPTION } }),
  );
  if (values.help) {
    (io.stdout ?? process.stdout).write(HELP);
    return 0;
  }
  const [name, dir, extra] = positionals;
  if (name === undefined)
    throw new UsageError('startproject needs a project name: tsgi startproject NAME [DIR]');
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
  if (!isProjectName(name)) {
    throw new UsageError(
      `'${name}' is not a valid project name: use letters, digits, '-' and '_', starting with a letter`,
    );
  }
  const project = await startProject(name, dir, { cwd: io.cwd ?? process.cwd(), version: VERSION });
  (io.stdout ?? process.stdout).write(
    `tsgi: created ${name} in ${project.dir}\n` +
      `  run it:         cd ${project.dir} && npm install && npm start\n` +
      `  or serve it:    tsgi serve ${project.dir}/wsgi.ts\n` +
      `  or develop it:  ${SETTINGS_ENV}=${project.dir}/settings.ts tsgi runserver\n`,
  );
  for (const note of project.notes) (io.stderr ?? process.stderr).write(`tsgi: note: ${note}\n`);
  return 0;
}

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
  if (!existsSync(join(target, 'tsconfig.json'))) files['tsconfig.json'] = TSCONFIG;
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
      scripts: { start: 'tsgi serve wsgi.ts', dev: 'tsgi runserver --settings settings.ts' },
      dependencies: { tsgi: version === '*' ? '*' : `^${version}` },
    },
    null,
    2,
  )}\n`;

/** What tsx does at run time, said to tsc and editors; `npm i -D typescript @types/node` to check. */
const TSCONFIG = `${JSON.stringify(
  {
    compilerOptions: {
      target: 'ES2022',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      strict: true,
      noEmit: true,
      allowImportingTsExtensions: true,
      verbatimModuleSyntax: true,
      skipLibCheck: true,
    },
    include: ['*.ts'],
  },
  null,
  2,
)}\n`;
