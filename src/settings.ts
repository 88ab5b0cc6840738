/**
 * Settings modules and `getWsgiApplication()`: Django's deployment model.
 *
 * A settings module is a TypeScript module that exports:
 * - `APP` — the site's application (a function, or an object with a `fetch` method); required;
 * - `MIDDLEWARE` — an array of middleware, the first listed is the outermost; default `[]`;
 * - `DEBUG` — a boolean: error pages show the exception and its stack; default `false`;
 * - `WSGI_APPLICATION` — `'path:attr'` of the site's wsgi.ts application, the path relative to the
 *   settings file; what `tsgi runserver` serves (without it, runserver serves this settings module's
 *   handler directly, as Django does).
 *
 * `getWsgiApplication()` loads the settings module it is given, else the one the
 * `TSGI_SETTINGS_MODULE` environment variable names, checks it, and builds the site's handler. It is
 * async because loading a module is (`await getWsgiApplication()`, top-level await in wsgi.ts).
 *
 * Nothing here is process-wide: every call reads the settings it is given and returns a new handler,
 * so two sites with different settings live side by side in one process. A settings module is
 * imported once (the module cache), so two calls with the same module share its `APP`.
 */
import { createHandler } from './handler.ts';
import { importModule, LoadError, type LoadedModule, moduleLabel, toApplication } from './loader.ts';
import type { SignalBus } from './signals.ts';
import type { Application, Handler, Middleware } from './types.ts';

/** The environment variable that names the settings module when none is given. */
export const SETTINGS_ENV = 'TSGI_SETTINGS_MODULE';

/** Raised when the settings are missing or wrong (Django's name). Names the module and the setting. */
export class ImproperlyConfigured extends Error {
  override name = 'ImproperlyConfigured';
  constructor(
    message: string,
    /** The settings module as it was named ('' when there was none). */
    readonly module: string,
    /** The setting or environment variable at fault. */
    readonly setting: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The checked settings of a site. */
export interface Settings {
  readonly DEBUG: boolean;
  readonly MIDDLEWARE: readonly Middleware[];
  readonly APP: Application;
  readonly WSGI_APPLICATION: string | undefined;
  /** How the module was named, for messages. */
  readonly module: string;
  /** The settings file's URL, when it was loaded from a file (relative `WSGI_APPLICATION` paths start there). */
  readonly url: string | undefined;
}

/** A settings module as a path, a module specifier, a `file:` URL, or the module object itself. */
export type SettingsSource = string | URL | Record<string, unknown>;

/** Options of {@link loadSettings} and {@link getWsgiApplication}. */
export interface SettingsOptions {
  /** The settings module. Default: the one `TSGI_SETTINGS_MODULE` names. */
  settings?: SettingsSource;
  /** Where `TSGI_SETTINGS_MODULE` is read. Default: `process.env`. */
  env?: Record<string, string | undefined>;
  /** Directory relative paths are resolved against. Default: `process.cwd()`. */
  cwd?: string;
}

/**
 * Loads and checks a settings module.
 *
 * @example
 * const settings = await loadSettings({ settings: 'mysite/settings.ts' });
 * settings.WSGI_APPLICATION; // './wsgi.ts:application'
 */
export async function loadSettings(options: SettingsOptions = {}): Promise<Settings> {
  const env = options.env ?? process.env;
  const source = options.settings ?? env[SETTINGS_ENV];
  const from = options.settings === undefined ? ` (named by ${SETTINGS_ENV})` : '';
  if (source === undefined || source === '') {
    throw new ImproperlyConfigured(
      `tsgi: no settings module: pass getWsgiApplication({ settings }) or set ${SETTINGS_ENV}=path/to/settings.ts`,
      '',
      SETTINGS_ENV,
    );
  }
  if (typeof source === 'object' && !(source instanceof URL))
    return check(source, 'the settings object', undefined);
  const name = moduleLabel(source);
  let loaded: LoadedModule;
  try {
    loaded = await importModule(source, { cwd: options.cwd, kind: `settings module${from}` });
  } catch (error) {
    if (!(error instanceof LoadError)) throw error;
    throw new ImproperlyConfigured(
      error.message,
      name,
      options.settings === undefined ? SETTINGS_ENV : 'settings',
      {
        cause: error,
      },
    );
  }
  const url = loaded.url.startsWith('file:') ? loaded.url : undefined;
  return check(loaded.exports, `settings module '${name}'${from}`, url, name);
}

/**
 * Builds the site's {@link Handler} from its settings module:
 * `createHandler(APP, { middleware: MIDDLEWARE, debug: DEBUG })`. Async: it imports the module.
 *
 * @example
 * // mysite/wsgi.ts
 * import { getWsgiApplication } from 'tsgi';
 * export let application = await getWsgiApplication({
 *   settings: process.env.TSGI_SETTINGS_MODULE ?? new URL('./settings.ts', import.meta.url),
 * });
 */
export async function getWsgiApplication(
  options: SettingsOptions & { signals?: SignalBus } = {},
): Promise<Handler> {
  const settings = await loadSettings(options);
  return createHandler(settings.APP, {
    middleware: settings.MIDDLEWARE,
    debug: settings.DEBUG,
    ...(options.signals === undefined ? {} : { signals: options.signals }),
  });
}

function check(
  exports: Record<string, unknown>,
  what: string,
  url: string | undefined,
  module = 'the settings object',
): Settings {
  const fail = (setting: string, problem: string): never => {
    throw new ImproperlyConfigured(`tsgi: ${what}: ${setting} ${problem}`, module, setting);
  };
  const { DEBUG = false, MIDDLEWARE = [], APP, WSGI_APPLICATION } = exports;
  if (typeof DEBUG !== 'boolean') fail('DEBUG', `must be true or false, got ${typeof DEBUG}`);
  if (!Array.isArray(MIDDLEWARE)) {
    fail('MIDDLEWARE', `must be an array of middleware (outermost first), got ${kindOf(MIDDLEWARE)}`);
  }
  (MIDDLEWARE as unknown[]).forEach((entry, index) => {
    if (typeof entry !== 'function') {
      fail(
        'MIDDLEWARE',
        `[${index}] is ${kindOf(entry)}, not a middleware function — did you forget to export it or to call its factory?`,
      );
    }
  });
  if (APP === undefined) fail('APP', 'is not exported — export const APP = (request) => new Response(…)');
  let app: Application;
  try {
    app = toApplication(APP, 'APP');
  } catch (error) {
    return fail('APP', (error as Error).message.replace(/^tsgi: APP is /, 'is '));
  }
  if (WSGI_APPLICATION !== undefined && typeof WSGI_APPLICATION !== 'string') {
    fail('WSGI_APPLICATION', `must be a 'path:attr' string, got ${kindOf(WSGI_APPLICATION)}`);
  }
  return {
    DEBUG: DEBUG as boolean,
    MIDDLEWARE: MIDDLEWARE as Middleware[],
    APP: app,
    WSGI_APPLICATION: WSGI_APPLICATION as string | undefined,
    module,
    url,
  };
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
