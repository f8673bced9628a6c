// Preloaded with `node --import` by test/cli/startup.test.ts: prints every
// module URL the process resolves to stderr as `import <url>` at exit, so a
// test can see what a command loaded. Hooks run off the main thread; the URLs
// come back over a MessagePort.
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';

const { port1, port2 } = new MessageChannel();
const seen = [];
port1.on('message', (url) => seen.push(url));
port1.unref();
const hooks = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  port.postMessage(result.url);
  return result;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { port: port2 }, transferList: [port2] });
process.on('exit', () => {
  for (const url of seen) process.stderr.write(`import ${url}\n`);
});
