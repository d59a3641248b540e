// `ponder serve` as a child process for the Node tests: started on a free port (--port 0), its
// URL read from the line it prints; stop() sends SIGTERM and resolves with how it exited.
import { spawn } from 'node:child_process';

export async function startServe(ponder, args) {
  const server = spawn(ponder, ['serve', ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+?:\d+)/);
      if (m) resolve(m[1]);
    });
    exited.then(({ code }) => reject(new Error(`ponder serve exited (${code}): ${stderr}`)));
    setTimeout(() => reject(new Error(`ponder serve did not start: ${stderr}`)), 60000).unref();
  });
  return {
    url,
    stderr: () => stderr,
    stop: async () => {
      server.kill('SIGTERM');
      return exited;
    },
  };
}
