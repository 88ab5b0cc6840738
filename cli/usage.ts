/** What `tsgi --help` and `tsgi --version` print. */
import { readFileSync } from 'node:fs';
import { SETTINGS_ENV } from '../src/settings.ts';
import { PACKAGE_ROOT } from './launcher.ts';

/** The installed tsgi's version. */
export const VERSION = (
  JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as { version: string }
).version;

export const HELP = `Usage: tsgi <command> [options]

Commands:
  serve MODULE[:ATTR]        serve the application MODULE exports as ATTR (default: application,
                             else the default export; a function or an object with fetch())
  runserver [[HOST:]PORT]    development server for the site whose settings module
                             $${SETTINGS_ENV} names: debug, access log, reload on change
  startproject NAME [DIR]    write a runnable site (package.json, settings.ts, wsgi.ts, app.ts)
                             into DIR (default ./NAME)
  bench [MODULE[:ATTR]]      measure the site in process: µs per request with each middleware layer
                             added, the signal receivers, the total against the bare application

Options of serve:
  -b, --bind HOST:PORT       where to listen (default 127.0.0.1:8000; 0.0.0.0:$PORT when $PORT is set)
      --host HOST            interface to listen on (default 127.0.0.1, or 0.0.0.0 when $PORT is set)
  -p, --port PORT            port to listen on, 0 for any free one (default $PORT, else 8000)
  -w, --workers N            a master and N worker processes (default $WEB_CONCURRENCY; without either,
                             one process, no master); a worker that dies or blocks is replaced
      --access-log           write one line per request
      --no-fast-response     leave the global Response alone (slower; for code that needs undici's own)
      --reload               restart when a file under MODULE's directory changes (development only)

Timeouts and limits of serve (seconds, fractions allowed; 0 turns a timeout off):
  -t, --timeout S            time a request has to produce its response, then 503 (default 30). With
                             workers, also the heartbeat limit: a worker whose event loop is blocked
                             longer is killed and replaced, and the requests it held are logged (the
                             heartbeat needs --workers: a single process has no master to notice)
      --headers-timeout S    time to receive a request's headers; a slower client is cut (default 10)
      --keep-alive-timeout S time an idle keep-alive connection stays open (default 5)
      --send-timeout S       time a response waits on a client that stopped reading (default 60)
      --max-connections N    most connections open at once, per process; more are closed (default 0:
                             no limit)
      --graceful-timeout S   time in-flight requests get to finish on SIGTERM; then they are cut, the
                             count is logged and the exit status is 1 (default 30; 0 cuts at once)
  Exit status: 0 after a clean stop, 1 when the graceful timeout cut requests or the server failed,
  2 for a mistake on the command line.

Options of runserver:
      --settings MODULE      the settings module (default $${SETTINGS_ENV})
      --noreload             do not restart when files change
                             [HOST:]PORT defaults to 127.0.0.1:$PORT when $PORT is set, else 127.0.0.1:8000
      --timeout S, --headers-timeout S, --keep-alive-timeout S, --send-timeout S,
      --max-connections N, --graceful-timeout S
                             as for serve, with the same defaults (no workers, so no heartbeat)

Options of bench (the site: MODULE[:ATTR] as for serve, or --settings alone for APP in MIDDLEWARE):
      --settings MODULE      the settings module (default $${SETTINGS_ENV})
  -X, --method METHOD        the request's method (default GET)
      --path PATH            the request's path and query (default /)
  -H, --header NAME:VALUE    a request header; repeat for more
      --time S               seconds of measuring per row (default 0.5)
      --json                 print one JSON document instead of the table
      --no-fast-response     measure with undici's own Response, as serve --no-fast-response runs

Common options:
      --verbose              when the site fails to load, print the whole stack, not one line
  -h, --help                 show this help
  -v, --version              show the version

A site written in TypeScript (.ts, .mts, .cts) is loaded through tsx; a .js or .mjs site needs nothing
but Node.
`;
