/**
 * Express (v5): `express()` with its defaults (ETags, `X-Powered-By`), the routes as its users write
 * them (`res.set()` with a headers object, `res.json()`, `res.send()`, `res.cookie()`,
 * `res.status(404)`), the layers `app.use((req, res, next) => next())`.
 */
import { createServer } from 'node:http';
import express from 'express';
import { COOKIE_CALLS, DATA, NOT_FOUND, TEXT } from '../shapes.ts';
import type { StartServer } from '../targets.ts';
import { listen } from './listen.ts';

export const start: StartServer = async ({ layers }) => {
  const app = express();
  for (let i = 0; i < layers; i++) app.use((_req, _res, next) => next());
  app.get('/text', (_req, res) => {
    res.set({ 'content-type': 'text/plain' }).send(TEXT);
  });
  app.get('/json', (_req, res) => {
    res.json(DATA);
  });
  app.get('/bare', (_req, res) => {
    res.send(TEXT);
  });
  app.get('/cookies', (_req, res) => {
    for (const { name, value, httpOnly } of COOKIE_CALLS) res.cookie(name, value, { httpOnly });
    res.type('text/plain').send(TEXT);
  });
  app.get('/missing', (_req, res) => {
    res.status(404).send(NOT_FOUND);
  });
  // what app.listen() does, on 127.0.0.1
  return listen(createServer(app));
};
