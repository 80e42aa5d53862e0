// Listens to a Redis client's connection events and reports them to an observer (ioredis would otherwise print each error).
import type { TollgateObserver } from '../core/observer.js';
import type { RedisClient } from './connection.js';

/** Per client: the observers watching it (one entry per watch: an observer may watch twice), and how to stop. */
const watched = new WeakMap<RedisClient, { readonly entries: Set<{ readonly observer: TollgateObserver }>; readonly stop: () => void }>();

/**
 * Reports connection errors (`error` events, one per failed reconnect) and the connection
 * becoming ready again. With this listener ioredis no longer prints
 * `[ioredis] Unhandled error event` to stderr; the observer decides what to log (the
 * logging observer: one line when Redis goes away, one when it is back). However many
 * Tollgates share a client, it gets one listener per event, removed once the last of them
 * calls the function returned here (so a closed Tollgate leaves nothing on a client it was given).
 */
export function watchConnection(client: RedisClient, observer: TollgateObserver): () => void {
  let watch = watched.get(client);
  if (watch === undefined) {
    const entries = new Set<{ readonly observer: TollgateObserver }>();
    const onError = (error: unknown): void => {
      const message = error instanceof Error ? error.message : String(error);
      for (const entry of entries) entry.observer.redisError({ operation: 'connection', reason: 'unavailable', message });
    };
    const onReady = (): void => {
      for (const entry of entries) entry.observer.redisUp();
    };
    client.on('error', onError);
    client.on('ready', onReady);
    watch = {
      entries,
      stop: () => {
        client.off('error', onError);
        client.off('ready', onReady);
        watched.delete(client);
      },
    };
    watched.set(client, watch);
  }
  const { entries, stop } = watch;
  const entry = { observer };
  entries.add(entry);
  return () => {
    if (entries.delete(entry) && entries.size === 0) stop();
  };
}

/**
 * Lets any number of callers wait for a client to be connected again with one `ready` listener
 * between them: refunds that would otherwise poll a Redis that is away, each on its own timer.
 * A wait holds nothing once it has ended (no reaction left on a long-lived promise).
 */
export class ReadyWait {
  readonly #client: RedisClient;
  readonly #waiters = new Set<() => void>();
  readonly #onReady = (): void => {
    this.#listening = false;
    this.#wakeAll();
  };
  #listening = false;
  #released = false;

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
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, maxMs));
      timer.unref();
      this.#waiters.add(done);
      if (!this.#listening) {
        this.#listening = true;
        this.#client.once('ready', this.#onReady);
      }
    });
  }

  /** Ends every wait now, makes later ones return at once and stops listening (the owner is closing). */
  release(): void {
    this.#released = true;
    if (this.#listening) this.#client.off('ready', this.#onReady);
    this.#listening = false;
    this.#wakeAll();
  }

  #wakeAll(): void {
    for (const done of [...this.#waiters]) done();
  }
}
