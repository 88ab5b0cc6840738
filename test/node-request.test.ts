/**
 * NodeRequest must pass for undici's Request wherever a user or undici looks at it. These tests
 * drive it with a stand-in for Node's IncomingMessage; test/node.test.ts does it over sockets.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { lookalikeRequests } from '../src/node/internals.ts';
import { GlobalRequest, NodeRequest, PayloadTooLargeError, type RequestSource } from '../src/node/request.ts';

function source(
  method: string,
  rawHeaders: string[] = [],
  options: { body?: string[]; maxBodySize?: number } = {},
): RequestSource {
  const req = new PassThrough() as unknown as IncomingMessage & PassThrough;
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] = rawHeaders[i + 1]!;
  Object.assign(req, { method, rawHeaders, headers });
  if (options.body !== undefined) {
    for (const chunk of options.body) req.write(chunk);
    req.end();
  }
  return {
    req,
    url: 'http://127.0.0.1/path?q=1',
    signal: new AbortController().signal,
    maxBodySize: options.maxBodySize ?? 1024,
    tooLarge: false,
  };
}

function request(from: RequestSource): Request {
  return new NodeRequest(from) as unknown as Request;
}

describe('NodeRequest', () => {
  it('is a Request by prototype, and this undici takes it as one', () => {
    const lookalike = request(source('GET'));
    assert.ok(lookalike instanceof Request);
    assert.equal(Object.prototype.toString.call(lookalike), '[object Request]');
    assert.equal(lookalike.constructor, GlobalRequest);
    assert.equal(lookalikeRequests(), true);
  });

  it('defines every member of undici’s Request itself', () => {
    for (const key of Object.getOwnPropertyNames(GlobalRequest.prototype)) {
      assert.ok(Object.hasOwn(NodeRequest.prototype, key), `NodeRequest.prototype.${key}`);
    }
  });

  it('has the method, URL and headers, duplicates joined as Headers joins them', () => {
    const lookalike = request(source('DELETE', ['Accept', 'a/b', 'X-Twice', '1', 'x-twice', '2']));
    assert.equal(lookalike.method, 'DELETE');
    assert.equal(lookalike.url, 'http://127.0.0.1/path?q=1');
    assert.equal(lookalike.headers, lookalike.headers, 'one headers object');
    assert.deepEqual(
      [...lookalike.headers],
      [
        ['accept', 'a/b'],
        ['x-twice', '1, 2'],
      ],
    );
  });

  it('answers the members a server request never changes as undici does', () => {
    const lookalike = request(source('GET'));
    const real = new GlobalRequest('http://127.0.0.1/path?q=1');
    for (const key of [
      'cache',
      'credentials',
      'destination',
      'integrity',
      'keepalive',
      'mode',
      'redirect',
      'referrer',
      'referrerPolicy',
      'isHistoryNavigation',
      'isReloadNavigation',
    ] as const) {
      assert.equal(lookalike[key as keyof Request], real[key as keyof Request], key);
    }
  });

  it('has no body for GET and HEAD, or without Content-Length and Transfer-Encoding', () => {
    assert.equal(request(source('GET', ['Content-Length', '5'])).body, null);
    assert.equal(request(source('HEAD')).body, null);
    assert.equal(request(source('POST')).body, null);
    // Content-Length: 0 is an empty body, not none (test/node/request-conformance.test.ts).
    assert.notEqual(request(source('POST', ['Content-Length', '0'])).body, null);
    assert.notEqual(request(source('POST', ['Transfer-Encoding', 'chunked'])).body, null);
  });

  it('reads its body with undici’s readers, once', async () => {
    const lookalike = request(source('POST', ['Content-Length', '7'], { body: ['{"a"', ':1}'] }));
    assert.equal(lookalike.bodyUsed, false);
    assert.deepEqual(await lookalike.json(), { a: 1 });
    assert.equal(lookalike.bodyUsed, true);
    await assert.rejects(lookalike.text(), TypeError);
  });

  it('reads form data with the content type it came with', async () => {
    const body = 'a=1&b=two';
    const lookalike = request(
      source(
        'POST',
        ['Content-Type', 'application/x-www-form-urlencoded', 'Content-Length', `${body.length}`],
        {
          body: [body],
        },
      ),
    );
    assert.equal((await lookalike.formData()).get('b'), 'two');
  });

  it('fails a read past maxBodySize with PayloadTooLargeError, at once when Content-Length says so', async () => {
    const declared = source('POST', ['Content-Length', '5000'], { maxBodySize: 100 });
    await assert.rejects(request(declared).text(), PayloadTooLargeError);
    assert.equal(declared.tooLarge, true);
    const streamed = source('POST', ['Transfer-Encoding', 'chunked'], {
      body: ['x'.repeat(60), 'y'.repeat(60)],
      maxBodySize: 100,
    });
    await assert.rejects(request(streamed).text(), (error: unknown) => {
      assert.ok(error instanceof PayloadTooLargeError);
      assert.equal(error.status, 413);
      return true;
    });
    assert.equal(streamed.tooLarge, true);
  });

  it('clones, and both copies read the whole body', async () => {
    const lookalike = request(source('PUT', ['Content-Length', '4', 'X-A', '1'], { body: ['data'] }));
    const clone = lookalike.clone();
    assert.equal(clone.headers.get('x-a'), '1');
    assert.deepEqual(await Promise.all([lookalike.text(), clone.text()]), ['data', 'data']);
  });

  it('is copied by new Request() with its method, URL, headers and body', async () => {
    const lookalike = request(source('PATCH', ['Content-Length', '4', 'X-A', '1'], { body: ['body'] }));
    const copy = new Request(lookalike);
    assert.deepEqual([copy.method, copy.url, copy.headers.get('x-a')], ['PATCH', lookalike.url, '1']);
    assert.equal(await copy.text(), 'body');
    assert.equal(lookalike.bodyUsed, true, 'the copy took the body, as it does from a Request');
  });

  it('shows its fields in util.inspect', () => {
    assert.match(inspect(request(source('GET'))), /method: 'GET'/);
  });
});
