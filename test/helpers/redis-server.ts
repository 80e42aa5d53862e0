// Private redis-server processes for tests and benchmarks: the same launcher the demo falls back to.
import { startPrivateRedis } from '../../demo/src/private-server.js';

export { freePort } from '../../demo/src/private-server.js';

/** A Redis a test file may use. `owned` servers were started by the tests and may be flushed. */
export interface TestRedis {
  readonly url: string;
  readonly owned: boolean;
  stop(): Promise<void>;
}

/** Starts `redis-server` on a free loopback port with no persistence. */
export async function startRedisServer(extraArgs: string[] = []): Promise<TestRedis & { port: number }> {
  const server = await startPrivateRedis({ args: extraArgs });
  return { url: server.url, port: server.port, owned: true, stop: server.stop };
}
