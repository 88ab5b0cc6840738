/**
 * tsgi: a gateway interface for TypeScript web applications — WSGI's idea on WHATWG fetch, with
 * lifecycle signals that fire exactly once per request.
 *
 * The public surface is this list; every name here is documented where it is defined. What a host
 * that owns request scopes itself needs (RequestScope, scopeOf, STATIC_BODY) is in `tsgi/host`.
 */
export { type BodyCloseReason, trackBody } from './body.ts';
export { compose, defineMiddleware, type Next } from './compose.ts';
export { createHandler, type HandlerOptions, isHandler } from './handler.ts';
export { LoadError, loadApplication } from './loader.ts';
export { type Mountable, type MountContext, mount } from './mount.ts';
export { FastResponse } from './node/fast-response.ts';
export { fromNodeListener, NodeListenerError, type RequestListener } from './node/from-node.ts';
export {
  type CloseResult,
  type ListenerOptions,
  type NodeListener,
  PayloadTooLargeError,
  type RunningServer,
  type ServeOptions,
  serve,
  toNodeListener,
  UploadDiscardedError,
} from './node/serve.ts';
export { RequestTimeoutError, SendTimeoutError } from './node/timeouts.ts';
export { type ErrorSource, formatError, ReceiverError } from './report.ts';
export { GracePeriodExceededError, InvalidResponseError, ScopeClosedError } from './scope.ts';
export { ReleaseFailedError, RequestOverError, type Scoped, scoped } from './scoped.ts';
export {
  getWsgiApplication,
  ImproperlyConfigured,
  loadSettings,
  type Settings,
  type SettingsOptions,
  type SettingsSource,
} from './settings.ts';
export { SignalBus, type SignalErrorReporter, signals } from './signals.ts';
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
