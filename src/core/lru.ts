// A bounded least-recently-used map: the one cache shape Tollgate keeps in process memory.

/**
 * A `Map` that holds at most `maxEntries`: reading or writing an entry makes it the most
 * recent, and a write past the bound drops the least recently used. Plain `Map` insertion
 * order does the bookkeeping, so every operation is O(1).
 */
export class BoundedLru<K, V> {
  readonly #maxEntries: number;
  readonly #entries = new Map<K, V>();

  constructor(maxEntries: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
    this.#maxEntries = maxEntries;
  }

  /** The entry for `key`, now the most recent; `undefined` when absent. */
  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  /** The entry for `key` without making it more recent. */
  peek(key: K): V | undefined {
    return this.#entries.get(key);
  }

  /** Stores `value` as the most recent entry, dropping the least recent one past the bound. */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as K);
  }

  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Entries from least to most recent. */
  entries(): IterableIterator<[K, V]> {
    return this.#entries.entries();
  }
}
