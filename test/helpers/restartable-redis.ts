// A redis-server on a fixed port with an append-only file, so a test can stop it and start it again with its data.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startPrivateRedis, type PrivateRedis } from '../../demo/src/private-server.js';

/** A Redis a test can take away and bring back on the same address, keeping what it held (AOF, fsync always). */
export class RestartableRedis {
  readonly port: number;
  readonly dir: string;
  #server: PrivateRedis | null = null;

  private constructor(port: number) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'tollgate-restartable-'));
  }

  /** Starts one on a free port. */
  static async start(): Promise<RestartableRedis> {
    const redis = new RestartableRedis(await freePort());
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#server = await startPrivateRedis({
      port: this.port,
      args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.dir],
    });
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    await server?.stop();
  }

  /** Stops the server and deletes its data directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
