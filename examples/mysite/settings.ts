/**
 * Settings of the example site. `getWsgiApplication()` builds it from them:
 * `createHandler(APP, { middleware: MIDDLEWARE, debug: DEBUG })`.
 *
 * Serve it with `npm start`, or `TSGI_SETTINGS_MODULE=examples/mysite/settings.ts tsgi runserver`.
 */
import type { Middleware } from 'tsgi';
import { gzip, logging } from 'tsgi/middleware';
import { app } from './app.ts';

// SECURITY WARNING: don't run with debug turned on in production!
export const DEBUG = true;

/** Middleware, outermost first: every request is logged, and what pays to compress is gzipped. */
export const MIDDLEWARE: Middleware[] = [logging(), gzip()];

export const APP = app;

/** What `tsgi runserver` serves: path:attr, the path relative to this file. */
export const WSGI_APPLICATION = './wsgi.ts:application';
