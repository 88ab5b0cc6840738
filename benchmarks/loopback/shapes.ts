/**
 * The five answers every loopback server gives, and what a client must receive for each.
 *
 * Every framework's server (servers/*.ts) serves the same five shapes by path, each written the way
 * that framework's users write it, so the benchmark compares frameworks doing the same job:
 *
 * | shape     | path       | what the application does                                              |
 * | --------- | ---------- | ---------------------------------------------------------------------- |
 * | `text`    | `/text`    | text with a plain headers object `{ 'content-type': 'text/plain' }`    |
 * | `json`    | `/json`    | `Response.json(data)` (or the framework's JSON reply) for a small object |
 * | `bare`    | `/bare`    | the simplest text answer: `new Response(text)`, `res.send(text)`, …    |
 * | `cookies` | `/cookies` | a `Headers` instance (or the framework's cookie calls) with two `Set-Cookie` plus content-type |
 * | `missing` | `/missing` | a 404 with a status and a body                                         |
 *
 * Frameworks differ in details no application asked for (Express adds `charset=utf-8` and an ETag,
 * Koa writes cookie attributes in lower case, a bare text answer gets each framework's default
 * content type). {@link checkAnswer} therefore compares what the application asked for: the status,
 * the body, the media type where one was set, and the cookies without regard to letter case. The
 * driver checks every target with it before measuring, and test/benchmarks.test.ts does too.
 */
import { get } from 'node:http';

/** The shapes, in the order tables and charts list them. */
export const SHAPES = ['text', 'json', 'bare', 'cookies', 'missing'] as const;
export type Shape = (typeof SHAPES)[number];

/** The path each shape is served at. */
export const PATHS: Readonly<Record<Shape, string>> = {
  text: '/text',
  json: '/json',
  bare: '/bare',
  cookies: '/cookies',
  missing: '/missing',
};

export const TEXT = 'Hello World';
/** The small object of the `json` shape. */
export const DATA = { message: 'Hello World', id: 42, tags: ['tsgi', 'benchmark'], ok: true } as const;
export const NOT_FOUND = 'Not Found';
/** The two cookies of the `cookies` shape, as `Set-Cookie` values. */
export const COOKIES = ['session=abc123; Path=/; HttpOnly', 'theme=dark; Path=/'] as const;
/** The same cookies as name, value and options, for frameworks that have a cookie call. */
export const COOKIE_CALLS = [
  { name: 'session', value: 'abc123', httpOnly: true },
  { name: 'theme', value: 'dark', httpOnly: false },
] as const;

interface Expected {
  status: number;
  body: string;
  /** The media type (before any `;`), when the application set one. */
  mediaType?: string;
  setCookie?: readonly string[];
}

/** What a client must receive for each shape. */
export const EXPECTED: Readonly<Record<Shape, Expected>> = {
  text: { status: 200, body: TEXT, mediaType: 'text/plain' },
  json: { status: 200, body: JSON.stringify(DATA), mediaType: 'application/json' },
  bare: { status: 200, body: TEXT },
  cookies: { status: 200, body: TEXT, mediaType: 'text/plain', setCookie: COOKIES },
  missing: { status: 404, body: NOT_FOUND },
};

/** The parts of a received answer that {@link checkAnswer} looks at. */
export interface Answer {
  status: number;
  body: string;
  contentType: string | undefined;
  setCookie: string[];
}

/**
 * What is wrong with `answer` for `shape`, one line per difference; an empty list when it is right.
 *
 * @example
 * const problems = checkAnswer('json', { status: 200, body: '{}', contentType: 'application/json', setCookie: [] });
 * // ['body is "{}", expected "{\"message\":…}"']
 */
export function checkAnswer(shape: Shape, answer: Answer): string[] {
  const expected = EXPECTED[shape];
  const problems: string[] = [];
  if (answer.status !== expected.status)
    problems.push(`status is ${answer.status}, expected ${expected.status}`);
  if (answer.body !== expected.body) {
    problems.push(`body is ${JSON.stringify(answer.body)}, expected ${JSON.stringify(expected.body)}`);
  }
  if (expected.mediaType !== undefined) {
    const mediaType = answer.contentType?.split(';')[0]?.trim().toLowerCase();
    if (mediaType !== expected.mediaType) {
      problems.push(`content-type is ${answer.contentType ?? 'missing'}, expected ${expected.mediaType}`);
    }
  }
  if (expected.setCookie !== undefined) {
    const got = answer.setCookie.map((cookie) => cookie.toLowerCase()).sort();
    const want = expected.setCookie.map((cookie) => cookie.toLowerCase()).sort();
    if (got.join('\n') !== want.join('\n')) {
      problems.push(`set-cookie is ${JSON.stringify(answer.setCookie)}, expected ${JSON.stringify(want)}`);
    }
  }
  return problems;
}

/**
 * Asks a server on 127.0.0.1 for one shape, on a connection of its own that closes afterwards.
 *
 * @example
 * checkAnswer('text', await requestAnswer(port, 'text')); // []
 */
export function requestAnswer(port: number, shape: Shape): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = get({ host: '127.0.0.1', port, path: PATHS[shape], agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          contentType: response.headers['content-type'],
          setCookie: response.headers['set-cookie'] ?? [],
        }),
      );
    });
    request.on('error', reject);
  });
}
