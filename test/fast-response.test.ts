/**
 * FastResponse must be indistinguishable from undici's Response for everything a user can observe:
 * the same answers, the same errors, `instanceof` both ways. These tests compare it with undici's
 * own class (captured as GlobalResponse) case by case.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { isStaticBody } from '../src/body.ts';
import {
  FastResponse,
  fixedBody,
  fixedResponse,
  GlobalResponse,
  streamLength,
  useFastResponse,
} from '../src/node/fast-response.ts';

const Fast = FastResponse as unknown as typeof Response;

async function observe(response: Response) {
  return {
    status: response.status,
    statusText: response.statusText,
    ok: response.ok,
    type: response.type,
    url: response.url,
    redirected: response.redirected,
    headers: [...response.headers],
    bodyIsNull: response.body === null,
    text: await response.text(),
    bodyUsed: response.bodyUsed,
  };
}

function errorOf(make: () => unknown): string | undefined {
  try {
    make();
    return undefined;
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

describe('FastResponse, compared with undici’s Response', () => {
  const cases: [string, () => [BodyInit | null | undefined, ResponseInit | undefined]][] = [
    ['no body', () => [undefined, undefined]],
    ['null body, 204', () => [null, { status: 204 }]],
    ['a string', () => ['Hello World', undefined]],
    [
      'a string with status, text and headers',
      () => ['x', { status: 201, statusText: 'Made', headers: { a: '1' } }],
    ],
    ['a string with its own content type', () => ['{}', { headers: [['Content-Type', 'application/json']] }]],
    ['bytes', () => [new Uint8Array([104, 105]), undefined]],
    ['a Buffer', () => [Buffer.from('buffer'), undefined]],
    ['an ArrayBuffer', () => [new TextEncoder().encode('ab').buffer, undefined]],
    ['a Blob', () => [new Blob(['blob'], { type: 'text/x-blob' }), undefined]],
    ['URLSearchParams', () => [new URLSearchParams({ a: '1', b: '2' }), undefined]],
    ['a fractional status', () => ['x', { status: 200.5 }]],
    ['a status given as a string', () => ['x', { status: '201' as unknown as number }]],
    ['a stream', () => [new Blob(['streamed']).stream(), { status: 299 }]],
    [
      'a Headers init with set-cookie',
      () => [
        'c',
        {
          headers: new Headers([
            ['set-cookie', 'a=1'],
            ['set-cookie', 'b=2'],
          ]),
        },
      ],
    ],
  ];
  for (const [name, make] of cases) {
    it(`answers like undici for ${name}`, async () => {
      const [body, init] = make();
      const [otherBody, otherInit] = make();
      assert.deepEqual(
        await observe(new Fast(body, init)),
        await observe(new GlobalResponse(otherBody, otherInit)),
      );
    });
  }

  // Plain header objects are kept as given until someone reads `headers`: each of these must still
  // come out exactly as undici's Headers would make them (or go to undici when they are not plain).
  const plainObjects: [string, () => Record<string, unknown>][] = [
    ['a plain object', () => ({ 'content-type': 'text/plain', 'x-a': '1' })],
    ['names in mixed case', () => ({ 'Content-Type': 'text/html', 'X-Request-Id': 'abc' })],
    ['no content type (the default is added)', () => ({ 'cache-control': 'no-store' })],
    ['two names differing only in case (Headers joins them)', () => ({ 'X-A': '1', 'x-a': '2' })],
    ['values with whitespace to trim', () => ({ 'x-a': '  padded\t' })],
    ['an empty value', () => ({ 'x-empty': '' })],
    ['a number value', () => ({ 'x-n': 5 })],
    ['a content-length', () => ({ 'content-length': '1' })],
    ['a set-cookie', () => ({ 'set-cookie': 'a=1' })],
    ['obs-text in a value', () => ({ 'x-latin': 'caf\xe9' })],
    [
      'an object with a prototype of its own',
      () => Object.assign(Object.create({ inherited: 'no' }), { own: 'yes' }),
    ],
  ];
  for (const [name, make] of plainObjects) {
    for (const body of ['text', null]) {
      it(`makes headers like undici from ${name}${body === null ? ', without a body' : ''}`, async () => {
        const fast = new Fast(body, { headers: make() as HeadersInit });
        const undici = new GlobalResponse(body, { headers: make() as HeadersInit });
        assert.deepEqual(await observe(fast), await observe(undici));
      });
    }
    it(`makes headers like undici from ${name}, through Response.json()`, async () => {
      const fast = Fast.json({ a: 1 }, { headers: make() as HeadersInit });
      const undici = GlobalResponse.json({ a: 1 }, { headers: make() as HeadersInit });
      assert.deepEqual(await observe(fast), await observe(undici));
    });
  }

  it('gives middleware the fixed data of a body nobody read (fixedBody in tsgi/host), and nothing for a stream', async () => {
    assert.equal(fixedBody(new Fast('text')), 'text');
    assert.deepEqual(fixedBody(new Fast(new Uint8Array([1, 2]))), new Uint8Array([1, 2]));
    assert.equal(fixedBody(new GlobalResponse('undici')), 'undici');
    assert.equal(fixedBody(new Fast(null)), null);
    assert.equal(fixedBody(new Fast(new Blob(['s']).stream())), undefined);
    const read = new Fast('read');
    await read.text();
    assert.equal(fixedBody(read), undefined);
  });

  it('hands the writer a plain object as a list, without making Headers', () => {
    const response = new Fast('x', { status: 201, headers: { 'Content-Type': 'text/html', 'x-a': '1' } });
    const fixed = fixedResponse(response)!;
    assert.equal(fixed.headers, undefined);
    assert.deepEqual(fixed.raw, ['content-type', 'text/html', 'x-a', '1']);
    const json = fixedResponse(Fast.json([1], { headers: { 'x-b': '2' } }))!;
    assert.deepEqual(json.raw, ['x-b', '2', 'content-type', 'application/json']);
  });

  it('once headers are read, writes what they say: a layer may have changed them', () => {
    const response = new Fast('x', { headers: { 'x-a': '1' } });
    response.headers.set('x-a', 'changed');
    response.headers.append('x-added', 'yes');
    const fixed = fixedResponse(response)!;
    assert.equal(fixed.raw, undefined);
    assert.deepEqual(
      [...fixed.headers!],
      [
        ['content-type', 'text/plain;charset=UTF-8'],
        ['x-a', 'changed'],
        ['x-added', 'yes'],
      ],
    );
  });

  it('takes each value of a plain object once, as undici reads an init once', () => {
    let reads = 0;
    const init = {
      get 'x-counted'() {
        reads++;
        return 'v';
      },
    };
    const response = new Fast('x', { headers: init });
    assert.equal(response.headers.get('x-counted'), 'v');
    assert.equal(reads, 1);
    // Also when another entry sends the object to undici's Headers.
    const both = Object.defineProperties({ 'x-n': 5 } as Record<string, unknown>, {
      'x-counted': { get: () => `v${++reads}`, enumerable: true },
    });
    assert.equal(new Fast('x', { headers: both as HeadersInit }).headers.get('x-counted'), 'v2');
    assert.equal(reads, 2);
  });

  const invalid: [string, () => [unknown, unknown]][] = [
    ['a status below 200', () => ['x', { status: 199 }]],
    ['a status above 599', () => ['x', { status: 600 }]],
    ['a status text with a newline', () => ['x', { statusText: 'a\nb' }]],
    ['a body with a null-body status', () => ['x', { status: 204 }]],
    ['an invalid header name', () => ['x', { headers: { 'bad name': '1' } }]],
    ['an invalid header value', () => ['x', { headers: { a: 'x\ny' } }]],
    ['a header value with a NUL', () => ['x', { headers: { a: 'x\0y' } }]],
    ['a header value past Latin-1', () => ['x', { headers: { a: 'snow ☃' } }]],
    ['a header name past Latin-1', () => ['x', { headers: { é: '1' } }]],
    ['a symbol key in a header object', () => ['x', { headers: { a: '1', [Symbol('s')]: '2' } }]],
    ['a header name with a colon', () => ['x', { headers: { 'a:b': '1' } }]],
    ['an init that is not an object', () => ['x', 5]],
    ['a locked stream', () => [lockedStream(), undefined]],
  ];
  for (const [name, make] of invalid) {
    it(`throws what undici throws for ${name}`, () => {
      const [body, init] = make();
      const expected = errorOf(() => new GlobalResponse(body as BodyInit, init as ResponseInit));
      assert.ok(expected !== undefined, 'undici throws');
      assert.equal(
        errorOf(() => new Fast(body as BodyInit, init as ResponseInit)),
        expected,
      );
    });
  }

  it('reads bodies as undici does: json, arrayBuffer, bytes, blob, formData', async () => {
    assert.deepEqual(await new Fast('{"a":1}').json(), { a: 1 });
    assert.deepEqual(new Uint8Array(await new Fast('ab').arrayBuffer()), new Uint8Array([97, 98]));
    const fast = new Fast('ab') as Response & { bytes(): Promise<Uint8Array> };
    assert.deepEqual([...(await fast.bytes())], [97, 98]);
    const blob = await new Fast('blob').blob();
    assert.equal(blob.type, 'text/plain;charset=utf-8');
    const form = await new Fast('a=1&b=2', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    }).formData();
    assert.equal(form.get('b'), '2');
  });

  it('can be read once: bodyUsed, then a TypeError, as undici', async () => {
    const response = new Fast('once');
    assert.equal(response.bodyUsed, false);
    assert.equal(await response.text(), 'once');
    assert.equal(response.bodyUsed, true);
    await assert.rejects(response.text(), TypeError);
    assert.throws(() => response.clone(), TypeError);
  });

  it('hands back the stream it was given, as undici does', () => {
    const stream = new Blob(['s']).stream();
    assert.equal(new Fast(stream).body, stream);
  });

  it('copies bytes and headers when made, as undici does', async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const headers = new Headers({ a: '1' });
    const response = new Fast(bytes, { headers });
    bytes[0] = 9;
    headers.set('a', '2');
    assert.equal(response.headers.get('a'), '1');
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), new Uint8Array([1, 2, 3]));
  });

  it('keeps one headers object, and the writer sees changes made to it', () => {
    const response = new Fast('x');
    assert.equal(response.headers, response.headers);
    response.headers.set('x-added', 'yes');
    assert.equal(fixedResponse(response)?.headers?.get('x-added'), 'yes');
  });

  it('clones: the clone and the original read the same body independently', async () => {
    const text = new Fast('twice');
    const textClone = text.clone();
    assert.equal(await text.text(), 'twice');
    assert.equal(await textClone.text(), 'twice');
    const streamed = new Fast(new Blob(['streamed twice']).stream(), { status: 202, headers: { a: '1' } });
    const streamedClone = streamed.clone();
    assert.equal(streamedClone.status, 202);
    assert.equal(streamedClone.headers.get('a'), '1');
    assert.deepEqual(await Promise.all([streamed.text(), streamedClone.text()]), [
      'streamed twice',
      'streamed twice',
    ]);
  });

  it('serves as the init of another response: new Response(x.body, x)', async () => {
    const original = new Fast('carried', { status: 203, statusText: 'Copied', headers: { a: '1' } });
    const copy = new GlobalResponse(original.body, original);
    assert.deepEqual([copy.status, copy.statusText, copy.headers.get('a')], [203, 'Copied', '1']);
    assert.equal(await copy.text(), 'carried');
  });

  it('has undici’s statics: json() with its default type, redirect(), error()', async () => {
    const json = Fast.json({ a: 1 }, { status: 201 });
    assert.equal(json.headers.get('content-type'), 'application/json');
    assert.equal(json.status, 201);
    assert.equal(await json.text(), '{"a":1}');
    const typed = Fast.json([1], { headers: { 'content-type': 'application/vnd.x+json' } });
    assert.equal(typed.headers.get('content-type'), 'application/vnd.x+json');
    const withHeaders = Fast.json(null, { headers: { a: '1' } });
    assert.deepEqual(
      [...withHeaders.headers],
      [...GlobalResponse.json(null, { headers: { a: '1' } }).headers],
    );
    assert.throws(() => Fast.json(undefined), TypeError);
    const redirect = Fast.redirect('http://example.com/', 301);
    assert.deepEqual([redirect.status, redirect.headers.get('location')], [301, 'http://example.com/']);
    assert.equal(Fast.error().type, 'error');
  });

  it('is an instance of either class, and a subclass keeps ordinary instanceof', () => {
    assert.ok(new Fast('x') instanceof GlobalResponse);
    assert.ok(new GlobalResponse('x') instanceof Fast);
    assert.ok(Fast.redirect('http://example.com/') instanceof Fast);
    assert.equal(Object.prototype.toString.call(new Fast('x')), '[object Response]');
    assert.equal(Fast.name, 'Response');
    class Custom extends Fast {}
    assert.ok(new Custom('x') instanceof Custom);
    assert.ok(new Custom('x') instanceof Fast);
    assert.equal(new Fast('x') instanceof Custom, false);
  });

  it('defines every member of undici’s Response itself, so undici code never sees it as `this`', () => {
    for (const key of Object.getOwnPropertyNames(GlobalResponse.prototype)) {
      assert.ok(Object.hasOwn(FastResponse.prototype, key), `FastResponse.prototype.${key}`);
    }
  });

  it('says its body is fixed data unless it is a stream', () => {
    assert.equal(isStaticBody(new Fast('x')), true);
    assert.equal(isStaticBody(new Fast(null)), true);
    assert.equal(isStaticBody(new Fast(new Uint8Array(1))), true);
    assert.equal(isStaticBody(new Fast(new Blob(['b']))), true);
    assert.equal(isStaticBody(new Fast(new Blob(['b']).stream())), false);
  });

  it('shows its fields in util.inspect without reading the body', () => {
    const response = new Fast('shown', { status: 202 });
    assert.match(inspect(response), /status: 202/);
    assert.equal(response.bodyUsed, false);
    assert.ok(fixedResponse(response) !== undefined, 'still untouched fixed data');
  });
});

describe('fixedResponse() and streamLength(): what the writer sends whole, and what it streams with a length', () => {
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => i % 256);
  const body = (response: Response) => {
    const fixed = fixedResponse(response);
    return fixed === undefined ? undefined : fixed.body;
  };

  it('sends a FastResponse’s own string or bytes whole, while nobody has read them', () => {
    assert.equal(body(new Fast('x')), 'x');
    assert.deepEqual(body(new Fast(bytes)), bytes);
    assert.equal(body(new Fast(null)), null);
  });

  it('still does once undici holds the body, unless that body was read or locked', async () => {
    const looked = new Fast('x');
    assert.ok(looked.body !== null, 'made the undici body');
    assert.equal(body(looked), 'x');
    const cloned = new Fast(bytes);
    await cloned.clone().arrayBuffer();
    assert.deepEqual(body(cloned), bytes, 'a read clone leaves our bytes whole');
    const partly = new Fast(bytes);
    const reader = partly.body!.getReader();
    await reader.read();
    reader.releaseLock();
    assert.equal(fixedResponse(partly), undefined);
    const locked = new Fast('x');
    locked.body!.getReader();
    assert.equal(fixedResponse(locked), undefined);
  });

  it('sends an ArrayBuffer, DataView or URLSearchParams body (which undici holds) whole', () => {
    assert.deepEqual(body(new Fast(bytes.slice().buffer)), bytes);
    assert.deepEqual(body(new Fast(new DataView(bytes.slice().buffer, 1, 2))), bytes.subarray(1, 3));
    assert.equal(body(new Fast(new URLSearchParams({ a: 'b c' }))), 'a=b+c');
  });

  it('streams a Blob body with its length, and a stream body without one', () => {
    const blob = new Fast(new Blob([bytes]));
    assert.equal(fixedResponse(blob), undefined);
    assert.equal(streamLength(blob), bytes.length);
    const stream = new Fast(new Blob([bytes]).stream());
    assert.equal(fixedResponse(stream), undefined);
    assert.equal(streamLength(stream), -1);
    assert.equal(streamLength(new Fast('x')), -1);
  });

  it('sends undici’s own responses made from a string or bytes whole, with their status and headers', () => {
    const fixed = fixedResponse(new GlobalResponse('x', { status: 201, headers: { 'x-a': 'b' } }))!;
    assert.equal(fixed.body, 'x');
    assert.equal(fixed.status, 201);
    assert.equal(fixed.headers?.get('x-a'), 'b');
    assert.equal(streamLength(new GlobalResponse(new Blob([bytes]))), bytes.length);
  });
});

describe('useFastResponse()', () => {
  it('swaps the global Response until the last lease is released, once per lease', () => {
    const original = globalThis.Response;
    const first = useFastResponse();
    const second = useFastResponse();
    assert.equal(globalThis.Response, FastResponse);
    first();
    first();
    assert.equal(globalThis.Response, FastResponse, 'a second release of one lease does nothing');
    second();
    assert.equal(globalThis.Response, original);
  });
});

function lockedStream(): ReadableStream {
  const stream = new Blob(['x']).stream();
  stream.getReader();
  return stream;
}
