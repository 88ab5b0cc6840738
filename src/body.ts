/**
 * The close-tracking body proxy (Rack's `BodyProxy` idea, for WHATWG streams).
 *
 * `trackBody(response, onClose)` returns a response whose body streams the original one through and
 * calls `onClose` exactly once: when the body has been read to the end, when reading it failed, when
 * the consumer cancelled it, or at once when there is no body. It keeps status, status text and
 * headers, reads one chunk only when its consumer asks for one (no read-ahead, so backpressure
 * reaches the source), and hands each chunk on as it is (no copies).
 *
 * The request scope uses the same proxy with a second power: its own handle on the source. A layer
 * may lock the proxy with a reader, `tee()` it or release a lock without cancelling; none of that
 * stops the scope from cancelling the source through the handle when the request is over.
 *
 * Caveat: `onClose` should not throw; if it does, the error goes to `console.error` rather than into
 * the stream of the client being served.
 */

/** Why a tracked body closed. */
export type BodyCloseReason =
  | { readonly outcome: 'completed' }
  | { readonly outcome: 'errored'; readonly error: unknown }
  | { readonly outcome: 'cancelled'; readonly reason: unknown };

/**
 * Marks a response whose body is absent or fixed data (set by tsgi's own fast responses): such a body
 * holds nothing that needs releasing, so the scope never wraps it in a stream. A truthy value marks
 * it; `false` says the body is a stream (the host's `fixedBody` oracle is then not asked).
 */
export const STATIC_BODY: unique symbol = Symbol.for('tsgi.staticBody');

/**
 * True when `response` carries the {@link STATIC_BODY} mark: its body is absent or made from fixed
 * data (a string, bytes, a Blob, form data), holds nothing that needs releasing, and can be dropped
 * unread. tsgi's own responses say so; about any other response (undici's, a runtime's) this knows
 * nothing and answers false — only its host can tell more, through the scope (`fixedBody` in
 * `ScopeOptions`, asked by `scope.hasFixedBody()`). Treating such a body as a stream is correct,
 * only slower.
 */
export function isStaticBody(response: Response): boolean {
  return Boolean((response as { [STATIC_BODY]?: unknown })[STATIC_BODY]);
}

/** The scope's side of a proxied body. */
export interface BodyHandle {
  /** The stream to hand on in place of the source. */
  readonly stream: ReadableStream<Uint8Array>;
  /** True once the body completed, errored or was cancelled. */
  readonly closed: boolean;
  /**
   * Cancels the source through the proxy's own reader, whoever holds the proxy, and errors the proxy
   * for anyone still reading it. Resolves when the source's cancellation settled; never rejects.
   */
  cancel(reason: unknown): Promise<void>;
  /**
   * Cancels the source as {@link cancel} does, but ends the proxy cleanly: for a consumer that has
   * stopped reading it of its own accord (a host that aborted `request.signal`, or that stopped at
   * the content-length). Deno logs an error in a response body it holds, and nobody is left to
   * take the end for a complete body.
   */
  release(reason: unknown): Promise<void>;
  /**
   * Replaces the callbacks given to {@link proxyBody} (so one proxy can serve both the layer boundary
   * and the owner writing the body). A body already closed reports at once.
   */
  watch(onClose: (reason: BodyCloseReason) => void, onChunk?: (bytes: number) => void): void;
}

/**
 * Wraps `response` so that `onClose` runs exactly once when its body is over.
 *
 * @example
 * const tracked = trackBody(await fetch(upstream), (reason) => {
 *   if (reason.outcome !== 'completed') upstreamAborts.inc();
 * });
 */
export function trackBody(response: Response, onClose: (reason: BodyCloseReason) => void): Response {
  const body = response.body;
  if (body === null) {
    callSafely(onClose, { outcome: 'completed' });
    return response;
  }
  return withBody(response, proxyBody(body, onClose).stream);
}

/** A new response with `response`'s status, status text and headers around `body`. */
export function withBody(response: Response, body: ReadableStream<Uint8Array>): Response {
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * Takes a reader on `source` and returns the proxy stream plus the handle the scope keeps.
 * `onChunk` sees the size of every chunk handed on (for byte counts).
 */
export function proxyBody(
  source: ReadableStream<Uint8Array>,
  onClose: (reason: BodyCloseReason) => void,
  onChunk?: (bytes: number) => void,
): BodyHandle {
  if (source.locked) {
    throw new TypeError(
      'tsgi: this response body is already locked or read; a layer returned a response whose body it had consumed. Return a new Response instead.',
    );
  }
  const reader = source.getReader();
  let closeHook = onClose;
  let chunkHook = onChunk;
  let closedWith: BodyCloseReason | undefined;
  let closed = false;
  /** Set once the source is being cancelled, by the scope or by the proxy's consumer. */
  let abandoned: { reason: unknown } | undefined;
  let cancelling: Promise<void> | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;

  const finish = (reason: BodyCloseReason): void => {
    if (closed) return;
    closed = true;
    closedWith = reason;
    callSafely(closeHook, reason);
  };

  // One cancellation, however many ask for it: a second caller waits for the same one to settle
  // (an async generator's finally runs only after its pending await).
  const cancelSource = (reason: unknown): Promise<void> => {
    // Recorded before the source hears of it: cancelling a source resolves a read still pending on
    // it as `done`, and the pull waiting on that read must not take it for the end of the body.
    abandoned ??= { reason };
    cancelling ??= reader.cancel(reason).then(
      () => finish({ outcome: 'cancelled', reason }),
      // A source whose cancel throws is still over for us: onClose runs either way.
      () => finish({ outcome: 'cancelled', reason }),
    );
    return cancelling;
  };

  const stop = (reason: unknown, cleanly: boolean): Promise<void> => {
    if (closed) return Promise.resolve();
    if (cancelling !== undefined) return cancelling;
    abandoned = { reason };
    try {
      // Whoever still reads the proxy (a tee branch, a forgotten reader) sees an error, not a
      // clean end that would pass for a complete body; only a consumer that stopped reading of its
      // own accord is given the clean end.
      if (cleanly) controller.close();
      else controller.error(reason);
    } catch {
      // Already closed or errored: nothing left to tell a reader.
    }
    return cancelSource(reason);
  };

  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      async pull(c) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          if (abandoned !== undefined) return;
          finish({ outcome: 'errored', error });
          c.error(error);
          return;
        }
        // Cancelled while the read was pending: by the scope, which already errored `c`, or by the
        // consumer, which already closed it. Either way it is a cancel, whatever the read returned.
        if (abandoned !== undefined) return;
        if (result.done) {
          finish({ outcome: 'completed' });
          c.close();
          return;
        }
        chunkHook?.(chunkSize(result.value));
        c.enqueue(result.value);
      },
      cancel(reason) {
        if (closed) return;
        return cancelSource(reason);
      },
    },
    { highWaterMark: 0 },
  );

  return {
    stream,
    get closed() {
      return closed;
    },
    cancel(reason) {
      return stop(reason, false);
    },
    release(reason) {
      return stop(reason, true);
    },
    watch(onClose, onChunk) {
      if (closedWith !== undefined) {
        callSafely(onClose, closedWith);
        return;
      }
      closeHook = onClose;
      chunkHook = onChunk;
    },
  };
}

function chunkSize(chunk: unknown): number {
  if (chunk instanceof Uint8Array || ArrayBuffer.isView(chunk)) return chunk.byteLength;
  if (typeof chunk === 'string') return chunk.length;
  return 0;
}

function callSafely(onClose: (reason: BodyCloseReason) => void, reason: BodyCloseReason): void {
  try {
    onClose(reason);
  } catch (error) {
    console.error(error);
  }
}
