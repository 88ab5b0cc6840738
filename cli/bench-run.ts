/**
 * The measuring half of `tsgi bench`: a site's stack rebuilt one layer at a time and driven in
 * process, with no sockets, so that what each layer costs can be read off by difference.
 *
 * Rows, each a configuration timed on its own:
 * - `bare application`: the application called directly — the floor;
 * - `handler`: `createHandler(application)` with no middleware, on an empty bus (what tsgi adds);
 * - one row per middleware, outermost first: the handler with the first k layers, on an empty bus;
 * - `receivers`: the whole stack on the site's own bus, so its signal receivers run (skipped, and
 *   equal to the last row, when that bus has none). This is the total: the site as it serves.
 *
 * Every row is driven the way the Node adapter drives a request: a request scope per request (with
 * the adapter's answer to "is this body fixed data?"), the application called with its context, the
 * body taken whole when it is fixed data or read to the end through the scope's handle when it
 * streams (a HEAD response's is cancelled), then the scope closed and `request_finished` emitted. So
 * even the bare row includes what any host does per request; only the differences are the site's.
 *
 * Each row is timed by bench-sample.ts: warmed up, then sampled in turn with the others.
 *
 * Anything that goes wrong stops the run with a {@link BenchError} that names the row, hence the
 * layer: a status of 500 or more, an exception (thrown, or reported to a bus: a failing receiver, a
 * request that could not close). Rows are first tried once each, in order (fewest layers first), so
 * the first one that fails names the layer that broke it.
 */
import { Buffer } from 'node:buffer';
import { createHandler, type HandlerStack } from '../src/handler.ts';
import { oneLine } from '../src/loader.ts';
import { fixedResponse, useFastResponse } from '../src/node/fast-response.ts';
import { undiciStaticBody } from '../src/node/internals.ts';
import type { ErrorSource } from '../src/report.ts';
import { RequestScope } from '../src/scope.ts';
import { signals as defaultSignals, SignalBus } from '../src/signals.ts';
import type { Application, Handler, SignalName } from '../src/types.ts';
import { measure, type Sampled, type Timing, timeBatch, timing, unsampled } from './bench-sample.ts';

/** Raised when benching cannot go on: the message is one line that names the row and the request. */
export class BenchError extends Error {
  override name = 'BenchError';
}

/** What to bench, and how. */
export interface BenchPlan {
  stack: HandlerStack;
  /** The site's own handler when it exported one: the total row runs it as it is. */
  handler?: Handler;
  /** The request every row is driven with (it has no body, so one object serves every request). */
  request: Request;
  /** Time budget per row (ms). */
  timePerRowMs: number;
  /** Swap in FastResponse while measuring, as `tsgi serve` does. Default: true. */
  fastResponse?: boolean;
}

export interface MeasuredRow {
  kind: 'application' | 'handler' | 'layer' | 'receivers';
  /** For a layer: the middleware function's name, or `#k`. */
  label: string;
  /** For a layer: its place in the middleware list, from 1 (outermost). */
  index?: number;
  timing: Timing;
}

export interface Measurement {
  /** What the whole site answered: status and body bytes. */
  status: number;
  bytes: number;
  /** bare application, handler, one per layer, receivers. */
  rows: MeasuredRow[];
  /** Receivers connected on the site's bus (0: the receivers row is the last layer's). */
  receivers: number;
}

const EVENTS: readonly SignalName[] = ['request_started', 'request_finished', 'got_request_exception'];

/**
 * Benches `plan.stack` row by row (see the module notes) and resolves with every row's timing.
 *
 * @example
 * const { rows } = await runBench({ stack: stackOf(handler)!, request: new Request('http://127.0.0.1/'), timePerRowMs: 500 });
 */
export async function runBench(plan: BenchPlan): Promise<Measurement> {
  const { stack, request } = plan;
  const watch = new Watch();
  const empty = new SignalBus({ onError: watch.report });
  const siteBus = stack.signals;
  const receivers = EVENTS.reduce((sum, event) => sum + siteBus.listenerCount(event), 0);
  const rows: Row[] = [
    row('application', 'bare application', 'the application', stack.application),
    row('handler', 'handler', 'createHandler() around the application', handlerWith(0, empty)),
  ];
  stack.middleware.forEach((layer, at) => {
    const label = layer.name || `#${at + 1}`;
    const blame = `middleware #${at + 1} (${label})`;
    rows.push(row('layer', label, blame, handlerWith(at + 1, empty), at + 1));
  });
  if (receivers > 0) {
    const site = plan.handler ?? handlerWith(stack.middleware.length, siteBus);
    rows.push(row('receivers', 'receivers', "the site's signal receivers", site));
  }

  // Errors the site's buses report (a receiver, the application inside a handler of its own) stop the
  // run too; the buses get their own hooks back afterwards.
  const buses = [...new Set([siteBus, defaultSignals])];
  const hooks = buses.map((bus) => bus.onError);
  for (const bus of buses) bus.onError = watch.report;
  const release = plan.fastResponse === false ? undefined : useFastResponse();
  try {
    for (const each of rows) await attempt(each, request, watch, () => each.drive());
    await measure(rows, plan.timePerRowMs);
  } finally {
    release?.();
    buses.forEach((bus, at) => {
      bus.onError = hooks[at]!;
    });
  }
  const measured: MeasuredRow[] = rows.map((each) => ({
    kind: each.kind,
    label: each.label,
    ...(each.index === undefined ? {} : { index: each.index }),
    timing: timing(each),
  }));
  if (receivers === 0) {
    const last = measured.at(-1)!;
    measured.push({ kind: 'receivers', label: 'receivers', timing: last.timing });
  }
  return { status: watch.status, bytes: watch.bytes, rows: measured, receivers };

  function handlerWith(layers: number, bus: SignalBus): Handler {
    return createHandler(stack.application, {
      middleware: stack.middleware.slice(0, layers),
      signals: bus,
      debug: stack.debug,
    });
  }

  function row(kind: Row['kind'], label: string, blame: string, app: Application, index?: number): Row {
    const drive = driver(app, request, watch);
    const made: Row = {
      kind,
      label,
      ...(index === undefined ? {} : { index }),
      blame,
      drive,
      batch: (requests) => attempt(made, request, watch, () => timeBatch(drive, requests)),
      ...unsampled(),
    };
    return made;
  }
}

interface Row extends Sampled {
  kind: MeasuredRow['kind'];
  label: string;
  index?: number;
  /** Who is to blame when this row fails and the ones before it did not. */
  blame: string;
  /** One request. */
  drive: () => Promise<void>;
}

/** What the buses and the scopes report while benching, and what the last response was. */
class Watch {
  failure: { error: unknown; where: ErrorSource } | undefined = undefined;
  status = 0;
  bytes = 0;
  readonly report = (error: unknown, where: ErrorSource): void => {
    this.failure ??= { error, where };
  };
}

/** A response of 500 or more: the row stops. */
class ServerError extends Error {
  constructor(readonly status: number) {
    super(`status ${status}`);
  }
}

/** One request, as the Node adapter would serve it (see the module notes). */
function driver(app: Application, request: Request, watch: Watch): () => Promise<void> {
  const head = request.method === 'HEAD';
  const options = {
    remoteAddress: '127.0.0.1',
    fixedBody: undiciStaticBody,
    onError: (error: unknown) => watch.report(error, 'request_scope'),
  };
  return async function drive(): Promise<void> {
    const scope = new RequestScope(options);
    let response: Response;
    try {
      response = await app(request, scope.context);
      if (typeof response?.status !== 'number') {
        throw new TypeError(`returned ${response === null ? 'null' : typeof response} instead of a Response`);
      }
      scope.status = response.status;
      const fixed = fixedResponse(response);
      if (fixed !== undefined) {
        const body = fixed.body;
        if (!head && body !== null) {
          scope.bytesSent = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
        }
      } else if (response.body !== null) {
        const stream = scope.own(response.body, ignore, !head);
        if (head) await stream.cancel();
        else {
          const reader = stream.getReader();
          while (!(await reader.read()).done) {}
        }
      }
    } catch (error) {
      await scope.close('errored', error);
      throw error;
    }
    await scope.close('completed');
    watch.status = scope.status;
    watch.bytes = scope.bytesSent;
    if (scope.status >= 500) throw new ServerError(scope.status);
    if (watch.failure !== undefined) throw watch.failure.error;
  };
}

/** Runs `work`, turning whatever goes wrong into a {@link BenchError} that blames `row`. */
async function attempt<T>(row: Row, request: Request, watch: Watch, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const { pathname, search } = new URL(request.url);
    const what = `${request.method} ${pathname}${search}`;
    const reported = watch.failure;
    if (error instanceof ServerError) {
      const why = reported === undefined ? '' : `: ${oneLine(reported.error)}`;
      throw new BenchError(
        `tsgi: bench: ${what} got a ${error.status} from ${row.blame}${why} — bench a request the site answers without a server error (--path, --method, --header)`,
        { cause: reported?.error },
      );
    }
    throw new BenchError(`tsgi: bench: ${failed(row, reported?.where)} on ${what}: ${oneLine(error)}`, {
      cause: error,
    });
  }
}

/** What failed, from the row and where the failure was reported (undefined: it was thrown). */
function failed(row: Row, where: ErrorSource | undefined): string {
  switch (where) {
    case undefined:
      return `${row.blame} threw`;
    case 'application':
      return `${row.blame} raised an exception`;
    case 'response':
      return `the response of ${row.blame} failed while it was read`;
    case 'request_scope':
      return `the request could not close with ${row.blame}`;
    default:
      return `a ${where} receiver on the site's bus failed`;
  }
}

function ignore(): void {}
