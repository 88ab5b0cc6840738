/**
 * tsgi's built-in middleware. Each export is a factory that returns a `Middleware`, so a site lists
 * them (`MIDDLEWARE = [logging(), gzip()]`) or wraps by hand (`application = helloWorld()(application)`).
 *
 * The built-in middleware arrive with their own issue; this entry point exists so that
 * `import … from 'tsgi/middleware'` resolves from the start.
 */
export {};
