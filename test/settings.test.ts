import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  getWsgiApplication,
  ImproperlyConfigured,
  LoadError,
  loadApplication,
  loadSettings,
  SignalBus,
} from '../src/index.ts';
import { parseApplicationSpec } from '../src/loader.ts';

const sites = fileURLToPath(new URL('./fixtures/sites/', import.meta.url));
const alpha = join(sites, 'alpha/settings.ts');
const beta = join(sites, 'beta/settings.ts');
const repo = fileURLToPath(new URL('..', import.meta.url));

// Broken modules are written at run time (tsc and biome must not see them), into a directory inside
// the repository (.tsgi-* is git-ignored) so that they are ES modules like the rest of the package.
let scratch: string;
const broken: Record<string, string> = {
  'syntax-error.ts': 'export const APP = (;\n',
  'no-app.ts': 'export const DEBUG = true;\n',
  'app-number.ts': 'export const APP = 42;\n',
  'middleware-object.ts':
    'export const APP = () => new Response();\nexport const MIDDLEWARE = { gzip: true };\n',
  'middleware-entry.ts':
    'export const APP = () => new Response();\nexport const MIDDLEWARE = [(next) => next, "gzip"];\n',
  'debug-string.ts': 'export const APP = () => new Response();\nexport const DEBUG = "yes";\n',
  'wsgi-number.ts': 'export const APP = () => new Response();\nexport const WSGI_APPLICATION = 1;\n',
  'missing-import.ts': "import './not-there.ts';\nexport const APP = () => new Response();\n",
  'throws.ts': "throw new Error('settings exploded');\n",
  'wsgi-default-fetch.ts': "export default { fetch: () => new Response('from fetch') };\n",
  'wsgi-default-function.ts': "export default () => new Response('from default');\n",
  'wsgi-named.ts':
    "export const application = () => new Response('named');\nexport const other = () => new Response('other');\n",
  'wsgi-not-app.ts': "export const application = 'hello';\n",
  'wsgi-nothing.ts': 'export const unrelated = 1;\n',
};

before(async () => {
  scratch = await mkdtemp(join(repo, '.tsgi-settings-'));
  await Promise.all(Object.entries(broken).map(([name, text]) => writeFile(join(scratch, name), text)));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function text(handler: { fetch(request: Request): Promise<Response> }, path = '/'): Promise<Response> {
  return handler.fetch(new Request(`http://127.0.0.1${path}`));
}

/** Asserts `promise` rejects with a one-line ImproperlyConfigured naming `module` and `setting`. */
async function rejectsClearly(
  promise: Promise<unknown>,
  expected: { setting: string; module?: string; message: RegExp },
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ImproperlyConfigured, `expected ImproperlyConfigured, got ${String(error)}`);
    assert.equal(error.name, 'ImproperlyConfigured');
    assert.equal(error.setting, expected.setting);
    if (expected.module !== undefined) {
      assert.equal(error.module, expected.module);
      assert.ok(error.message.includes(expected.module), `the message names the module: ${error.message}`);
    }
    assert.match(error.message, expected.message);
    assert.match(error.message, /^tsgi: /);
    assert.ok(!error.message.includes('\n'), `one line: ${error.message}`);
    return true;
  });
}

describe('getWsgiApplication()', () => {
  describe('with a settings path', () => {
    it('builds the handler from APP, MIDDLEWARE and DEBUG', async () => {
      const handler = await getWsgiApplication({ settings: alpha });
      const response = await text(handler);
      assert.equal(await response.text(), 'alpha');
      assert.equal(response.headers.get('x-site'), 'alpha');
      const boom = await text(handler, '/boom');
      assert.equal(boom.status, 500);
      assert.match(await boom.text(), /alpha exploded/, 'DEBUG = true shows the exception');
    });

    it('resolves a relative path against cwd', async () => {
      const handler = await getWsgiApplication({ settings: 'alpha/settings.ts', cwd: sites });
      assert.equal(await (await text(handler)).text(), 'alpha');
    });

    it('accepts a file: URL, and a path without its extension', async () => {
      const byUrl = await getWsgiApplication({ settings: pathToFileURL(alpha) });
      assert.equal(await (await text(byUrl)).text(), 'alpha');
      const bare = await getWsgiApplication({ settings: './alpha/settings', cwd: sites });
      assert.equal(await (await text(bare)).text(), 'alpha');
    });

    it('passes { signals } on to the handler', async () => {
      const bus = new SignalBus();
      const statuses: number[] = [];
      bus.connect('request_finished', ({ status }) => {
        statuses.push(status);
      });
      const handler = await getWsgiApplication({ settings: alpha, signals: bus });
      await (await text(handler)).text();
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(statuses, [200]);
    });
  });

  describe('with two sites in one process', () => {
    it('keeps their settings apart', async () => {
      const [first, second] = await Promise.all([
        getWsgiApplication({ settings: alpha }),
        getWsgiApplication({ settings: beta }),
      ]);
      const [a, b] = await Promise.all([text(first), text(second)]);
      assert.equal(await a.text(), 'alpha');
      assert.equal(await b.text(), 'beta');
      assert.equal(a.headers.get('x-site'), 'alpha');
      assert.equal(b.headers.get('x-site'), null, "beta does not get alpha's middleware");
      const boom = await text(second, '/boom');
      assert.equal(boom.status, 500);
      assert.doesNotMatch(await boom.text(), /beta exploded/, 'DEBUG = false hides the exception');
      const alphaBoom = await text(first, '/boom');
      assert.match(await alphaBoom.text(), /alpha exploded/, "beta's DEBUG does not leak into alpha");
    });

    it('makes a new handler on every call', async () => {
      const one = await getWsgiApplication({ settings: alpha });
      const two = await getWsgiApplication({ settings: alpha });
      assert.notEqual(one, two);
    });
  });

  describe('with a settings module object', () => {
    it('uses an imported module as it is', async () => {
      const module = (await import(pathToFileURL(beta).href)) as Record<string, unknown>;
      const handler = await getWsgiApplication({ settings: module });
      assert.equal(await (await text(handler)).text(), 'beta');
    });

    it('uses a plain object, with MIDDLEWARE and DEBUG defaulting to [] and false', async () => {
      const handler = await getWsgiApplication({ settings: { APP: () => new Response('plain') } });
      assert.equal(await (await text(handler)).text(), 'plain');
      const settings = await loadSettings({ settings: { APP: () => new Response() } });
      assert.equal(settings.DEBUG, false);
      assert.deepEqual(settings.MIDDLEWARE, []);
    });
  });

  describe('with TSGI_SETTINGS_MODULE', () => {
    it('loads the module the variable names when no settings are given', async () => {
      const handler = await getWsgiApplication({ env: { TSGI_SETTINGS_MODULE: beta } });
      assert.equal(await (await text(handler)).text(), 'beta');
    });

    it('reads process.env by default', async () => {
      const saved = process.env.TSGI_SETTINGS_MODULE;
      process.env.TSGI_SETTINGS_MODULE = alpha;
      try {
        const handler = await getWsgiApplication();
        assert.equal(await (await text(handler)).text(), 'alpha');
      } finally {
        if (saved === undefined) delete process.env.TSGI_SETTINGS_MODULE;
        else process.env.TSGI_SETTINGS_MODULE = saved;
      }
    });

    it('prefers { settings } over the variable', async () => {
      const handler = await getWsgiApplication({ settings: alpha, env: { TSGI_SETTINGS_MODULE: beta } });
      assert.equal(await (await text(handler)).text(), 'alpha');
    });
  });

  describe('when the settings are missing or wrong', () => {
    const at = (name: string): string => join(scratch, name);

    it('names the variable when there is no settings module at all', async () => {
      await rejectsClearly(getWsgiApplication({ env: {} }), {
        setting: 'TSGI_SETTINGS_MODULE',
        message: /no settings module: .*TSGI_SETTINGS_MODULE/,
      });
    });

    it('names the module and the variable when the file does not exist', async () => {
      const missing = at('nope.ts');
      await rejectsClearly(getWsgiApplication({ env: { TSGI_SETTINGS_MODULE: missing } }), {
        setting: 'TSGI_SETTINGS_MODULE',
        module: missing,
        message: /settings module \(named by TSGI_SETTINGS_MODULE\) .* was not found/,
      });
      await rejectsClearly(getWsgiApplication({ settings: missing }), {
        setting: 'settings',
        module: missing,
        message: /was not found \(no file at /,
      });
    });

    it('says when a package specifier is not installed', async () => {
      await rejectsClearly(getWsgiApplication({ settings: 'no-such-package-xyz/settings' }), {
        setting: 'settings',
        module: 'no-such-package-xyz/settings',
        message: /was not found \(not a file path, and no package of that name is installed/,
      });
    });

    it('reports a syntax error in one line with its location', async () => {
      await rejectsClearly(getWsgiApplication({ settings: at('syntax-error.ts') }), {
        setting: 'settings',
        module: at('syntax-error.ts'),
        message: /failed to load: .*syntax-error\.ts:1:\d+/,
      });
    });

    it('reports a module the settings import that is missing, and an exception at import', async () => {
      await rejectsClearly(getWsgiApplication({ settings: at('missing-import.ts') }), {
        setting: 'settings',
        module: at('missing-import.ts'),
        message: /failed to load: .*not-there\.ts/,
      });
      await rejectsClearly(getWsgiApplication({ settings: at('throws.ts') }), {
        setting: 'settings',
        message: /failed to load: Error: settings exploded/,
      });
    });

    it('names APP when it is not exported or not an application', async () => {
      await rejectsClearly(getWsgiApplication({ settings: at('no-app.ts') }), {
        setting: 'APP',
        module: at('no-app.ts'),
        message: /APP is not exported/,
      });
      await rejectsClearly(getWsgiApplication({ settings: at('app-number.ts') }), {
        setting: 'APP',
        module: at('app-number.ts'),
        message: /APP is number, not an application/,
      });
    });

    it('names MIDDLEWARE when it is not an array, or an entry is not a function', async () => {
      await rejectsClearly(getWsgiApplication({ settings: at('middleware-object.ts') }), {
        setting: 'MIDDLEWARE',
        module: at('middleware-object.ts'),
        message: /MIDDLEWARE must be an array of middleware \(outermost first\), got object/,
      });
      await rejectsClearly(getWsgiApplication({ settings: at('middleware-entry.ts') }), {
        setting: 'MIDDLEWARE',
        module: at('middleware-entry.ts'),
        message: /MIDDLEWARE \[1\] is string, not a middleware function/,
      });
    });

    it('names DEBUG and WSGI_APPLICATION when they have the wrong type', async () => {
      await rejectsClearly(getWsgiApplication({ settings: at('debug-string.ts') }), {
        setting: 'DEBUG',
        message: /DEBUG must be true or false, got string/,
      });
      await rejectsClearly(getWsgiApplication({ settings: at('wsgi-number.ts') }), {
        setting: 'WSGI_APPLICATION',
        message: /WSGI_APPLICATION must be a 'path:attr' string, got number/,
      });
    });

    it('checks a settings object too', async () => {
      await rejectsClearly(getWsgiApplication({ settings: { MIDDLEWARE: [] } }), {
        setting: 'APP',
        module: 'the settings object',
        message: /APP is not exported/,
      });
    });
  });
});

describe('loadSettings()', () => {
  it('returns WSGI_APPLICATION and the file the settings came from', async () => {
    const settings = await loadSettings({ settings: alpha });
    assert.equal(settings.WSGI_APPLICATION, './wsgi.ts:application');
    assert.equal(settings.url, pathToFileURL(alpha).href);
    assert.equal(settings.DEBUG, true);
    assert.equal(settings.MIDDLEWARE.length, 1);
  });
});

describe('loadApplication()', () => {
  const at = (name: string): string => join(scratch, name);
  const body = async (app: Awaited<ReturnType<typeof loadApplication>>): Promise<string> =>
    (await app(new Request('http://127.0.0.1/'), {} as never)).text();

  it("takes the export 'application' by default", async () => {
    assert.equal(await body(await loadApplication(at('wsgi-named.ts'))), 'named');
  });

  it('takes the export named after the colon', async () => {
    assert.equal(await body(await loadApplication(`${at('wsgi-named.ts')}:other`)), 'other');
  });

  it('falls back to a default export: a function, or an object with fetch()', async () => {
    assert.equal(await body(await loadApplication(at('wsgi-default-function.ts'))), 'from default');
    assert.equal(await body(await loadApplication(at('wsgi-default-fetch.ts'))), 'from fetch');
  });

  it('finds a file by a bare name under cwd (mysite/wsgi), before trying a package', async () => {
    assert.equal(await body(await loadApplication('alpha/wsgi', { cwd: sites })), 'alpha');
  });

  it('loads a real wsgi.ts that builds its handler from settings', async () => {
    const app = await loadApplication(join(sites, 'alpha/wsgi.ts'));
    assert.equal(await body(app), 'alpha');
  });

  describe('when it cannot', () => {
    const rejects = (spec: string, message: RegExp): Promise<void> =>
      assert.rejects(loadApplication(spec), (error: unknown) => {
        assert.ok(error instanceof LoadError, String(error));
        assert.match(error.message, message);
        assert.ok(!error.message.includes('\n'), error.message);
        return true;
      });

    it('says the module was not found', () =>
      rejects(at('absent.ts'), /module '.*absent\.ts' was not found/));

    it('lists the exports when the attr is missing', () =>
      rejects(`${at('wsgi-named.ts')}:nope`, /has no export 'nope' — its exports are: application, other/));

    it('says what to export when there is neither application nor a default export', () =>
      rejects(
        at('wsgi-nothing.ts'),
        /has no export 'application' and no default export — export let application/,
      ));

    it('says what an application is when the export is something else', () =>
      rejects(at('wsgi-not-app.ts'), /export 'application' of .* is string, not an application/));
  });
});

describe('parseApplicationSpec()', () => {
  it('splits path:attr, and leaves paths whose colon is not an attr alone', () => {
    assert.deepEqual(parseApplicationSpec('site/wsgi.ts:app'), { module: 'site/wsgi.ts', attr: 'app' });
    assert.deepEqual(parseApplicationSpec('site/wsgi.ts'), { module: 'site/wsgi.ts', attr: undefined });
    assert.deepEqual(parseApplicationSpec('C:\\site\\wsgi.ts'), {
      module: 'C:\\site\\wsgi.ts',
      attr: undefined,
    });
    assert.deepEqual(parseApplicationSpec('file:///site/wsgi.ts'), {
      module: 'file:///site/wsgi.ts',
      attr: undefined,
    });
    assert.deepEqual(parseApplicationSpec('file:///site/wsgi.ts:app'), {
      module: 'file:///site/wsgi.ts',
      attr: 'app',
    });
  });
});
