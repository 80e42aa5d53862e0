// Reservations on the wire: compact ids in shared bucket hashes, and settlements coalesced into one script call.
import { randomInt } from 'node:crypto';
import type { KeyLayout } from '../core/layout.js';
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
  /** The pool whose buckets numbered it: its hash tag in the cluster layout, `''` when all pools share buckets. */
  readonly pool: string;
  readonly bucketKey: string;
  readonly field: string;
  /**
   * When the bucket may go, on the server clock: the end of its slot plus the settle window;
   * `null` once an admission into this bucket has succeeded (it set the expiry already).
   */
  readonly expireAtMs: number | null;
}

/** One pool's numbering within the current minute slot. */
interface PoolBuckets {
  count: number;
  bucketN: number;
  bucket: string;
  /** The bucket key an admission was seen to write into: its expiry is set. */
  expiring: string;
}

/**
 * Hands out reservation ids for one client: a random tag tells clients apart, the minute slot
 * and a counter place each admission in a bucket of {@link BUCKET_ENTRIES}. Ids are chosen
 * before the script runs, so a re-sent admission finds its own field. In the CARTO layout all
 * pools share one numbering (fewer, fuller buckets); in the cluster layout each pool has its
 * own, because a bucket must sit in its pool's hash slot.
 */
export class ReservationIds {
  readonly #tag = randomInt(36 ** 6, 36 ** 7).toString(36);
  readonly #windowMs: number;
  readonly #layout: KeyLayout;
  #slot = -1;
  #prefix = '';
  readonly #pools = new Map<string, PoolBuckets>();

  constructor(windowMs: number, layout: KeyLayout) {
    this.#windowMs = windowMs;
    this.#layout = layout;
  }

  /** The next slot for an admission of `user` (in `org`) at server time `serverNowMs`. */
  next(serverNowMs: number, user: string, org: string | null): ReservationSlot {
    const slot = Math.floor(serverNowMs / SLOT_MS);
    if (slot !== this.#slot) {
      this.#slot = slot;
      this.#pools.clear();
      this.#prefix = `${slot.toString(36)}.${this.#tag}.`;
    }
    const pool = this.#layout.bucketsPerPool ? this.#layout.poolTag(user, org) : '';
    let state = this.#pools.get(pool);
    if (state === undefined) {
      state = { count: 0, bucketN: -1, bucket: '', expiring: '' };
      this.#pools.set(pool, state);
    }
    const n = Math.floor(state.count / BUCKET_ENTRIES);
    if (n !== state.bucketN) {
      state.bucketN = n;
      state.bucket = `${this.#prefix}${n.toString(36)}`;
    }
    const field = (state.count % BUCKET_ENTRIES).toString(36);
    state.count += 1;
    const bucketKey = this.#layout.reservationBucketKey(user, org, state.bucket);
    return {
      id: `${state.bucket}.${field}`,
      pool,
      bucketKey,
      field,
      expireAtMs: bucketKey === state.expiring ? null : (slot + 1) * SLOT_MS + this.#windowMs,
    };
  }

  /**
   * Records that an admission wrote into its bucket (and so set its expiry): later ones skip
   * the PEXPIREAT. Safe because a write can never land after its bucket expired: the settle
   * window is at least the call timeout, past which decide.lua writes nothing.
   */
  written(reservation: ReservationSlot): void {
    const state = this.#pools.get(reservation.pool);
    if (state !== undefined) state.expiring = reservation.bucketKey;
  }
}

interface Queued {
  readonly entry: SettleEntry;
  /** Entries of one group go in one script call: their pool's hash tag, `''` when any may share a call. */
  readonly group: string;
  readonly resolve: (reply: SettleReply) => void;
  readonly reject: (error: unknown) => void;
}

/** Most settlements sent in one script call. */
const MAX_BATCH = 128;

/**
 * Coalesces settlements: every settle asked for in the same turn of the event loop goes to
 * Redis in one settle.lua call per group (each entry still applied exactly once,
 * independently). On a cluster a group is a pool: one script may touch only one hash slot.
 */
export class SettleBatcher {
  readonly #client: RedisClient;
  #queue: Queued[] = [];
  #scheduled = false;

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Queues `entry` in `group`; resolves with its own reply once its batch has run. */
  submit(entry: SettleEntry, group = ''): Promise<SettleReply> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ entry, group, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const groups = new Map<string, Queued[]>();
    for (const queued of this.#queue) {
      const group = groups.get(queued.group);
      if (group === undefined) groups.set(queued.group, [queued]);
      else group.push(queued);
    }
    this.#queue = [];
    for (const queued of groups.values()) this.#send(queued);
  }

  #send(queue: Queued[]): void {
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
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
