// Listens to a Redis client's connection events and reports them to an observer (ioredis would otherwise print each error).
import type { TollgateObserver } from '../core/observer.js';
import type { RedisClient } from './connection.js';

/**
 * Reports connection errors (`error` events, one per failed reconnect) and the connection
 * becoming ready again. With this listener ioredis no longer prints
 * `[ioredis] Unhandled error event` to stderr; the observer decides what to log (the
 * logging observer: one line when Redis goes away, one when it is back).
 */
export function watchConnection(client: RedisClient, observer: TollgateObserver): void {
  client.on('error', (error: unknown) => {
    observer.redisError({ operation: 'connection', reason: 'unavailable', message: error instanceof Error ? error.message : String(error) });
  });
  client.on('ready', () => observer.redisUp());
}

/**
 * Lets any number of callers wait for a client to be connected again with one `ready` listener
 * between them: refunds that would otherwise poll a Redis that is away, each on its own timer.
 */
export class ReadyWait {
  readonly #client: RedisClient;
  #ready: Promise<void> | null = null;
  #released = false;
  #release: () => void = () => undefined;
  readonly #releasedPromise = new Promise<void>((resolve) => {
    this.#release = resolve;
  });

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Whether the client is connected and serving commands now. */
  get ready(): boolean {
    return this.#client.status === 'ready';
  }

  /** Resolves when the client is ready (at once if it is), after `maxMs`, or on {@link release}. */
  wait(maxMs: number): Promise<void> {
    if (this.ready || this.#released) return Promise.resolve();
    this.#ready ??= new Promise<void>((resolve) => {
      this.#client.once('ready', () => {
        this.#ready = null;
        resolve();
      });
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, maxMs));
      timer.unref();
    });
    return Promise.race([this.#ready, timeout, this.#releasedPromise]).finally(() => clearTimeout(timer));
  }

  /** Ends every wait now and makes later ones return at once (the owner is closing). */
  release(): void {
    this.#released = true;
    this.#release();
  }
}
