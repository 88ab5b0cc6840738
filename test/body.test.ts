import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStaticBody, proxyBody } from '../src/body.ts';
import { STATIC_BODY } from '../src/host.ts';
import { type BodyCloseReason, trackBody } from '../src/index.ts';
import { readText, recordingStream } from './fixtures/streams.ts';

function tracked(response: Response): { response: Response; reasons: BodyCloseReason[] } {
  const reasons: BodyCloseReason[] = [];
  return { response: trackBody(response, (reason) => reasons.push(reason)), reasons };
}

describe('trackBody()', () => {
  describe('when the body is read to the end', () => {
    it('calls onClose once with completed, after the last chunk', async () => {
      const source = recordingStream({ chunks: 2 });
      const { response, reasons } = tracked(new Response(source.stream));
      assert.deepEqual(reasons, []);
      assert.equal(await response.text(), 'chunk 0;chunk 1;');
      assert.deepEqual(reasons, [{ outcome: 'completed' }]);
      assert.equal(source.completed, true);
    });
  });

  describe('when the consumer cancels', () => {
    it('passes the cancel to the source and calls onClose once with cancelled', async () => {
      const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
      const { response, reasons } = tracked(new Response(source.stream));
      const reader = response.body!.getReader();
      await reader.read();
      await reader.cancel('client left');
      await reader.cancel('again').catch(() => {});
      assert.equal(source.cancelled, true);
      assert.equal(source.cancelReason, 'client left');
      assert.deepEqual(reasons, [{ outcome: 'cancelled', reason: 'client left' }]);
    });

    it('still calls onClose when the source cancel throws', async () => {
      const body = new ReadableStream({
        pull(controller) {
          controller.enqueue(new Uint8Array([1]));
        },
        cancel() {
          throw new Error('cancel failed');
        },
      });
      const { response, reasons } = tracked(new Response(body));
      await response.body!.cancel('bye');
      assert.equal(reasons.length, 1);
      assert.equal(reasons[0]!.outcome, 'cancelled');
    });
  });

  describe('when the body errors', () => {
    it('errors the proxy and calls onClose once with errored', async () => {
      const source = recordingStream({ chunks: 5, failAt: 1 });
      const { response, reasons } = tracked(new Response(source.stream));
      await assert.rejects(response.text(), /failed at chunk 1/);
      assert.equal(reasons.length, 1);
      assert.equal(reasons[0]!.outcome, 'errored');
      assert.match(String((reasons[0] as { error: Error }).error.message), /failed at chunk 1/);
    });
  });

  describe('when there is no body', () => {
    it('calls onClose at once and returns the same response', () => {
      const original = new Response(null, { status: 204 });
      const { response, reasons } = tracked(original);
      assert.equal(response, original);
      assert.deepEqual(reasons, [{ outcome: 'completed' }]);
    });
  });

  it('keeps status, status text and every header, repeated Set-Cookie included', () => {
    const headers = new Headers({ 'content-type': 'text/plain' });
    headers.append('set-cookie', 'a=1');
    headers.append('set-cookie', 'b=2');
    const { response } = tracked(new Response('x', { status: 418, statusText: 'Teapot', headers }));
    assert.equal(response.status, 418);
    assert.equal(response.statusText, 'Teapot');
    assert.equal(response.headers.get('content-type'), 'text/plain');
    assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2']);
  });

  it('streams: reads one chunk from the source per chunk asked for, never ahead', async () => {
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const { response } = tracked(new Response(source.stream));
    const reader = response.body!.getReader();
    // Response construction and the proxy must not pull on their own.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(source.pulls, 0);
    await reader.read();
    await reader.read();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(source.pulls <= 3, `read ahead: ${source.pulls} pulls for 2 reads`);
    await reader.cancel();
  });

  it('hands chunks on without copying them', async () => {
    const chunk = new Uint8Array([1, 2, 3]);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(chunk);
        controller.close();
      },
    });
    const { response } = tracked(new Response(body));
    const { value } = await response.body!.getReader().read();
    assert.equal(value, chunk);
  });

  it('runs onClose once even when it throws, reporting the error', async () => {
    const original = console.error;
    const printed: unknown[] = [];
    console.error = (value: unknown) => printed.push(value);
    let calls = 0;
    try {
      const response = trackBody(new Response('abc'), () => {
        calls++;
        throw new Error('onClose broke');
      });
      assert.equal(await response.text(), 'abc');
    } finally {
      console.error = original;
    }
    assert.equal(calls, 1);
    assert.equal((printed[0] as Error).message, 'onClose broke');
  });

  it('refuses a body that is already locked, saying what went wrong', () => {
    const response = new Response('abc');
    response.body!.getReader();
    assert.throws(() => trackBody(response, () => {}), /already locked or read/);
  });
});

describe('the scope handle (proxyBody)', () => {
  it('cancels the source even while a layer holds a reader on the proxy', async () => {
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const reasons: BodyCloseReason[] = [];
    const handle = proxyBody(source.stream, (reason) => reasons.push(reason));
    const reader = handle.stream.getReader();
    await reader.read();
    await handle.cancel('scope closed');
    assert.equal(source.cancelled, true);
    assert.equal(handle.closed, true);
    assert.equal(reasons.length, 1);
    // the layer still reading sees an error, not a clean end that would pass for a complete body
    await assert.rejects(reader.read());
  });

  it('cancels the source of a body a layer tee()d and only half read', async () => {
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const handle = proxyBody(source.stream, () => {});
    const [left] = handle.stream.tee();
    await left.getReader().read();
    await handle.cancel('scope closed');
    assert.equal(source.cancelled, true);
  });

  it('cancels the source of a body whose lock a layer released', async () => {
    const source = recordingStream({ chunks: Number.POSITIVE_INFINITY });
    const handle = proxyBody(source.stream, () => {});
    const reader = handle.stream.getReader();
    await reader.read();
    reader.releaseLock();
    await handle.cancel('scope closed');
    assert.equal(source.cancelled, true);
  });

  it('does nothing when the body already completed', async () => {
    const source = recordingStream({ chunks: 1 });
    const reasons: BodyCloseReason[] = [];
    const handle = proxyBody(source.stream, (reason) => reasons.push(reason));
    assert.equal(await readText(handle.stream), 'chunk 0;');
    await handle.cancel('late');
    assert.equal(source.cancelled, false);
    assert.deepEqual(reasons, [{ outcome: 'completed' }]);
  });

  it('counts the bytes it hands on', async () => {
    let bytes = 0;
    const handle = proxyBody(
      new Response('héllo').body!,
      () => {},
      (n) => {
        bytes += n;
      },
    );
    await readText(handle.stream);
    assert.equal(bytes, 6);
  });
});

describe('isStaticBody()', () => {
  it('is true for a response marked STATIC_BODY, as tsgi’s FastResponse is for fixed data', () => {
    const response = new Response(new ReadableStream());
    Object.defineProperty(response, STATIC_BODY, { value: 'text' });
    assert.equal(isStaticBody(response), true);
  });

  it('is false for a response marked false, as tsgi’s FastResponse is for a stream', () => {
    const response = new Response('text');
    Object.defineProperty(response, STATIC_BODY, { value: false });
    assert.equal(isStaticBody(response), false);
  });

  it('is false for a runtime’s own response, whatever its body: only its host can tell (through the scope)', () => {
    assert.equal(isStaticBody(new Response('text')), false);
    assert.equal(isStaticBody(new Response(new Uint8Array(2))), false);
    assert.equal(isStaticBody(new Response(new ReadableStream())), false);
  });
});
