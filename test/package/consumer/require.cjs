// CommonJS: Node 20.19+ loads the ES module package through require().
const tsgi = require('tsgi');
const middleware = require('tsgi/middleware');
const handler = tsgi.createHandler(() => new Response('cjs'), { middleware: [middleware.helloWorld()] });
handler.fetch(new Request('http://localhost/hello')).then(async (response) => {
  process.stdout.write(`${JSON.stringify({ body: await response.text(), inFlight: handler.inFlight })}\n`);
});
