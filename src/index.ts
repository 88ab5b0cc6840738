/**
 * tsgi: a gateway interface for TypeScript web applications — WSGI's idea on WHATWG fetch, with
 * lifecycle signals that fire exactly once per request.
 *
 * The public surface is this list; every name here is documented where it is defined.
 */
export { type BodyCloseReason, STATIC_BODY, trackBody } from './body.ts';
export { compose, defineMiddleware, type Next } from './compose.ts';
export { createHandler, type HandlerOptions, isHandler } from './handler.ts';
export {
  GracePeriodExceededError,
  InvalidResponseError,
  RequestScope,
  ScopeClosedError,
  type ScopeOptions,
  scopeOf,
} from './scope.ts';
export { ReceiverError, SignalBus, type SignalErrorReporter, signals } from './signals.ts';
export type {
  Application,
  CloseCallback,
  FinishInfo,
  Handler,
  Middleware,
  Outcome,
  Receiver,
  RequestContext,
  RequestExceptionEvent,
  RequestFinishedEvent,
  RequestStartedEvent,
  SignalEvents,
  SignalName,
} from './types.ts';
