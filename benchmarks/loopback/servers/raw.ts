/**
 * raw: `node:http` alone, as its users write a small server — `writeHead()` with a headers object and
 * `end()`, routing on `req.url`. The baseline every ratio is taken against.
 *
 * With `contentLength` (the `raw-length` target) every answer also carries a Content-Length, which
 * Node frames without chunking, as tsgi does: the stricter baseline.
 */
import { createServer, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { COOKIES, DATA, NOT_FOUND, TEXT } from '../shapes.ts';
import type { StartServer } from '../targets.ts';
import { listen } from './listen.ts';

export const start: StartServer = async ({ contentLength }) => {
  const send = (res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: string) => {
    if (contentLength) headers['content-length'] = Buffer.byteLength(body);
    res.writeHead(status, headers);
    res.end(body);
  };
  const server = createServer((req, res) => {
    switch (req.url) {
      case '/text':
        return send(res, 200, { 'content-type': 'text/plain' }, TEXT);
      case '/json':
        return send(res, 200, { 'content-type': 'application/json' }, JSON.stringify(DATA));
      case '/bare':
        if (contentLength) return send(res, 200, {}, TEXT);
        return res.end(TEXT);
      case '/cookies':
        return send(res, 200, { 'content-type': 'text/plain', 'set-cookie': [...COOKIES] }, TEXT);
      default:
        return send(res, 404, { 'content-type': 'text/plain' }, NOT_FOUND);
    }
  });
  return listen(server);
};
