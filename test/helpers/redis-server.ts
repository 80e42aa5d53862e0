// Starts and stops private redis-server processes on free loopback ports; used by tests and benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A Redis a test file may use. `owned` servers were started by the tests and may be flushed. */
export interface TestRedis {
  readonly url: string;
  readonly owned: boolean;
  stop(): Promise<void>;
}

/** A free TCP port on loopback (the OS picks one; we release it just before redis-server binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPing(url: string, child: ChildProcess | null, deadlineMs = 10_000): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < deadlineMs) {
    if (child !== null && child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {}); // refused connections are expected until the server is up
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Redis at ${url} did not answer within ${deadlineMs} ms`);
}

/** Starts `redis-server` on a free loopback port with no persistence. */
export async function startRedisServer(extraArgs: string[] = []): Promise<TestRedis & { port: number }> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const port = await freePort();
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', ...extraArgs],
      { stdio: 'ignore' },
    );
    const url = `redis://127.0.0.1:${port}`;
    try {
      await waitForPing(url, child);
    } catch {
      child.kill('SIGKILL');
      continue; // the port was taken between freePort() and bind: try another
    }
    return {
      url,
      port,
      owned: true,
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    };
  }
  throw new Error('could not start redis-server on a free port');
}

