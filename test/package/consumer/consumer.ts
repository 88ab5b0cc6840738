// A consumer's TypeScript, checked with strict tsc against the installed package's declarations.
import {
  type Application,
  compose,
  createHandler,
  defineMiddleware,
  type Middleware,
  mount,
  type Outcome,
  type RequestFinishedEvent,
  type RunningServer,
  SignalBus,
  serve,
  signals,
  trackBody,
} from 'tsgi';
import { RequestScope, scopeOf } from 'tsgi/host';
import { gzip, helloWorld, logging } from 'tsgi/middleware';

const app: Application = (request, context) => {
  context.state.seen = true;
  context.onClose(({ outcome, bytesSent }) => {
    const done: Outcome = outcome;
    const bytes: number = bytesSent;
    void done;
    void bytes;
  });
  return Response.json({ path: new URL(request.url).pathname, id: context.id });
};

const timing: Middleware = defineMiddleware(async (request, context, next) => {
  const response = await next(request);
  return trackBody(response, () => context.signal.aborted);
});

const bus = new SignalBus();
const disconnect: () => void = bus.connect('request_finished', (event: RequestFinishedEvent) => {
  const status: number = event.status;
  const outcome: 'completed' | 'aborted' | 'errored' = event.outcome;
  const ms: number = event.durationMs;
  void [status, outcome, ms];
});
disconnect();
signals.connect('got_request_exception', ({ error }) => {
  const what: unknown = error;
  void what;
});

export const application = createHandler(mount({ '/api': app }, app), {
  middleware: [
    logging({ format: 'combined' }),
    gzip({ threshold: 1024 }),
    timing,
    helloWorld({ path: '/hi' }),
  ],
  signals: bus,
});
export const composed: Middleware = compose(gzip(), helloWorld());
export const fetcher: (request: Request) => Promise<Response> = application.fetch;
export async function start(): Promise<RunningServer> {
  const server = await serve(application, { port: 0, host: '127.0.0.1' });
  const port: number = server.port;
  void port;
  return server;
}

/** A host of its own: what tsgi/host is for. */
export async function host(request: Request): Promise<number> {
  const scope = new RequestScope({ remoteAddress: '127.0.0.1' });
  const response = await application(request, scope.context);
  const owned: RequestScope | undefined = scopeOf(scope.context);
  scope.status = response.status;
  scope.end('completed');
  return owned === scope ? response.status : 0;
}
