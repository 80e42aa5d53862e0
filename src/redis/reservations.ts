// Reservations on the wire: compact ids in shared bucket hashes, and settlements coalesced into one script call.
import { randomInt } from 'node:crypto';
import { reservationBucketKey } from '../core/keys.js';
import { runSettle, type SettleEntry, type SettleReply } from './scripts.js';
import type { RedisClient } from './connection.js';

/** How long a bucket collects reservations: one minute of one client's admissions. */
export const SLOT_MS = 60_000;
/**
 * Reservations per bucket hash. Redis keeps a hash of at most 128 small entries as a listpack
 * (about 20 bytes an entry here); two clients sharing a slot's numbering stay under it.
 */
export const BUCKET_ENTRIES = 64;

/** Where one admission records its reservation. */
export interface ReservationSlot {
  /** `<slot>.<tag>.<n>.<field>`: the reservation's id. */
  readonly id: string;
  readonly bucketKey: string;
  readonly field: string;
  /**
   * When the bucket may go, on the server clock: the end of its slot plus the settle window;
   * `null` once an admission into this bucket has succeeded (it set the expiry already).
   */
  readonly expireAtMs: number | null;
}

/**
 * Hands out reservation ids for one client: a random tag tells clients apart, the minute slot
 * and a counter place each admission in a bucket of {@link BUCKET_ENTRIES}. Ids are chosen
 * before the script runs, so a re-sent admission finds its own field.
 */
export class ReservationIds {
  readonly #tag = randomInt(36 ** 6, 36 ** 7).toString(36);
  readonly #windowMs: number;
  #slot = -1;
  #count = 0;
  #prefix = '';
  #bucket = '';
  #bucketN = -1;
  /** The bucket key an admission was seen to write into: its expiry is set. */
  #expiring = '';

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** The next slot at server time `serverNowMs`. */
  next(serverNowMs: number): ReservationSlot {
    const slot = Math.floor(serverNowMs / SLOT_MS);
    if (slot !== this.#slot) {
      this.#slot = slot;
      this.#count = 0;
      this.#bucketN = -1;
      this.#prefix = `${slot.toString(36)}.${this.#tag}.`;
    }
    const n = Math.floor(this.#count / BUCKET_ENTRIES);
    if (n !== this.#bucketN) {
      this.#bucketN = n;
      this.#bucket = `${this.#prefix}${n.toString(36)}`;
    }
    const field = (this.#count % BUCKET_ENTRIES).toString(36);
    this.#count += 1;
    const bucketKey = reservationBucketKey(this.#bucket);
    return {
      id: `${this.#bucket}.${field}`,
      bucketKey,
      field,
      expireAtMs: bucketKey === this.#expiring ? null : (slot + 1) * SLOT_MS + this.#windowMs,
    };
  }

  /**
   * Records that an admission wrote into `bucketKey` (and so set its expiry): later ones skip
   * the PEXPIREAT. Safe because a write can never land after its bucket expired: the settle
   * window is at least the call timeout, past which decide.lua writes nothing.
   */
  written(bucketKey: string): void {
    this.#expiring = bucketKey;
  }
}

interface Queued {
  readonly entry: SettleEntry;
  readonly resolve: (reply: SettleReply) => void;
  readonly reject: (error: unknown) => void;
}

/** Most settlements sent in one script call. */
const MAX_BATCH = 128;

/**
 * Coalesces settlements: every settle asked for in the same turn of the event loop goes to
 * Redis in one settle.lua call (each entry still applied exactly once, independently).
 */
export class SettleBatcher {
  readonly #client: RedisClient;
  #queue: Queued[] = [];
  #scheduled = false;

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Queues `entry`; resolves with its own reply once its batch has run. */
  submit(entry: SettleEntry): Promise<SettleReply> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ entry, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      runSettle(
        this.#client,
        batch.map((queued) => queued.entry),
      ).then(
        (replies) => batch.forEach((queued, index) => queued.resolve(replies[index] as SettleReply)),
        (error: unknown) => batch.forEach((queued) => queued.reject(error)),
      );
    }
  }
}
