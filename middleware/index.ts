/**
 * tsgi's built-in middleware. Each export is a factory that returns a `Middleware`, so a site lists
 * them (`MIDDLEWARE = [logging(), gzip()]`, the first listed is the outermost) or wraps by hand
 * (`application = helloWorld()(application)`).
 */
export { type GzipOptions, gzip, isCompressible } from './gzip.ts';
export { type HelloWorldOptions, helloWorld } from './hello-world.ts';
export { isAccessLog, type LoggingOptions, type LogStream, logging } from './logging.ts';
