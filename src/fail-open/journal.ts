// The bounded in-memory journal of what could not reach Redis: fail-open usage and unsent settlements, written back in batches.
import { randomUUID } from 'node:crypto';
import {
  admissionIncrements,
  breakdownOf,
  poolOwner,
  settlementIncrements,
  type Breakdown,
  type Increment,
  type Outcome,
  type Reservation,
} from '../core/accounting.js';
import { RedisUnavailableError, ReservationError, TollgateError } from '../core/errors.js';
import type { QuotaKind } from '../core/quota-kinds.js';
import { CARTO_LAYOUT, type KeyLayout } from '../core/layout.js';
import { bounded, neverSent, toTollgateError } from '../redis/connection.js';
import { writeJournalBatch, type JournalWrite } from '../redis/journal-writeback.js';
import type { Tollgate } from '../tollgate.js';

/**
 * Units a fail-open request consumed while Redis was down, to be written when it is back.
 * Written in one step when the request has ended by then; otherwise in two: the charge as soon
 * as Redis answers (so decisions there see it), the settlement once the request has ended.
 */
export interface UsageEntry extends Reservation {
  readonly type: 'usage';
  /** How the request ended; `null` while it is still in flight. */
  breakdown: Breakdown | null;
  /** True once a write of the charge alone was sent: from then on the settlement is written apart. */
  split: boolean;
  /** True once the charge is in Redis (alone, or with the settlement). */
  chargeWritten: boolean;
}

/** A settlement of an admitted request that could not reach Redis when the response ended. */
export interface SettleEntry {
  readonly type: 'settle';
  readonly id: string;
  readonly reservation: Reservation;
  readonly outcome: Outcome;
}

/** One journal entry. */
export type JournalEntry = UsageEntry | SettleEntry;

/** Counters of a journal's life, for health checks and logs. */
export interface JournalStats {
  /** Entries held now, in-flight ones included. */
  readonly size: number;
  readonly maxEntries: number;
  /** Fail-open units whose charge is not in Redis yet: decisions through Redis cannot see them. */
  readonly unwrittenUnits: number;
  /** Entries written to Redis since start. */
  readonly written: number;
  /** Settlements dropped because the journal was full: their units stay charged. */
  readonly dropped: number;
  /** Entries Redis refused for good (an expired reservation, a key of the wrong type). */
  readonly lost: number;
}

/** What one {@link LocalJournal.flush} achieved. */
export interface FlushResult {
  /** Entries written completely (and removed) by this pass. */
  readonly written: number;
  /** Entries still held: in flight, or waiting for Redis. */
  readonly remaining: number;
}

/**
 * Every usage increment a fail-open request adds, exactly as an admission followed by a
 * settlement would have: the charge (charged metric and total_requests, user and org),
 * then the settlement's moves, merged per key.
 */
export function usageIncrements(entry: UsageEntry, breakdown: Breakdown, layout: KeyLayout = CARTO_LAYOUT): Increment[] {
  const totals = new Map<string, number>();
  for (const { key, delta } of [...chargeIncrements(entry, layout), ...settlementIncrements(entry, breakdown, layout)]) {
    totals.set(key, (totals.get(key) ?? 0) + delta);
  }
  return [...totals].filter(([, delta]) => delta !== 0).map(([key, delta]) => ({ key, delta }));
}

/** The increments of the charge alone: exactly what an admission through Redis writes (src/core/accounting.ts). */
export function chargeIncrements(entry: Reservation, layout: KeyLayout = CARTO_LAYOUT): Increment[] {
  return admissionIncrements(entry, entry.cost, layout);
}

/** The name of the usage pool a decision reads for a kind: the org's for a member, else the user's. */
export function poolKey(user: string, org: string | null, kind: QuotaKind): string {
  const owner = poolOwner(user, org);
  return `${owner.type}:${owner.name}:${kind}`;
}

/** Construction parameters of a {@link LocalJournal}; validated by whoever parses the options. */
export interface LocalJournalOptions {
  readonly tollgate: Tollgate;
  readonly maxEntries: number;
  readonly timeoutMs: number;
  readonly flushIntervalMs: number;
  readonly log: (message: string) => void;
}

/** Ids of fail-open usage entries (and of their reservations) start with this, so settle() knows they live here. */
export const LOCAL_ID_PREFIX = 'fo-';

/** The marker id of a split entry's settlement: never the id of any other write. */
const settlementMarker = (id: string): string => `${id}-settle`;

/**
 * A bounded, in-memory, per-process journal. Usage entries are written by lua/apply-once.lua,
 * many per call, each under a marker key so a repeated write-back counts once; settlement
 * entries rely on settle's own idempotency. It lives in memory only: when the process dies,
 * what it holds is gone (see docs/http.md).
 */
export class LocalJournal {
  readonly #entries = new Map<string, JournalEntry>();
  readonly #options: LocalJournalOptions;
  /** Units whose charge is not in Redis yet, per {@link poolKey}. */
  readonly #unwritten = new Map<string, number>();
  #unwrittenTotal = 0;
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<FlushResult> | null = null;
  #written = 0;
  #dropped = 0;
  #lost = 0;

  constructor(options: LocalJournalOptions) {
    this.#options = options;
  }

  /** Counters for health checks. */
  stats(): JournalStats {
    return {
      size: this.#entries.size,
      maxEntries: this.#options.maxEntries,
      unwrittenUnits: this.#unwrittenTotal,
      written: this.#written,
      dropped: this.#dropped,
      lost: this.#lost,
    };
  }

  /** Whether any fail-open charge is still missing from Redis. */
  hasUnwrittenCharges(): boolean {
    return this.#unwrittenTotal > 0;
  }

  /** Units of the pool `key` (see {@link poolKey}) charged here and not yet in Redis. */
  unwrittenUnits(key: string): number {
    return this.#unwritten.get(key) ?? 0;
  }

  /** Takes a slot for a fail-open request before it runs; `null` when the journal is full. */
  reserveUsage(fields: Omit<UsageEntry, 'type' | 'id' | 'breakdown' | 'split' | 'chargeWritten'>): UsageEntry | null {
    if (this.#entries.size >= this.#options.maxEntries) return null;
    const entry: UsageEntry = { ...fields, type: 'usage', id: `${LOCAL_ID_PREFIX}${randomUUID()}`, breakdown: null, split: false, chargeWritten: false };
    this.#entries.set(entry.id, entry);
    this.#count(entry, entry.cost);
    this.#schedule();
    return entry;
  }

  /** The usage entry with this id while it is held. */
  usageEntry(id: string): UsageEntry | undefined {
    const entry = this.#entries.get(id);
    return entry?.type === 'usage' ? entry : undefined;
  }

  /** Records how a fail-open request ended (throws on an invalid outcome); from now on it may be written whole. */
  completeUsage(entry: UsageEntry, outcome: Outcome): void {
    entry.breakdown = breakdownOf(outcome, entry.cost);
    this.#schedule();
  }

  /** Keeps a settlement for later; when full it is dropped (its units stay charged) and `false` returned. */
  addSettle(reservation: Reservation, outcome: Outcome): boolean {
    if (this.#entries.size >= this.#options.maxEntries) {
      this.#dropped += 1;
      return false;
    }
    const entry: SettleEntry = { type: 'settle', id: randomUUID(), reservation, outcome };
    this.#entries.set(entry.id, entry);
    this.#schedule();
    return true;
  }

  /**
   * Writes what can be written: usage in batches (charges of requests still in flight
   * included), then settlements, stopping at the first sign that Redis is still away.
   * Concurrent calls share one pass.
   */
  flush(): Promise<FlushResult> {
    this.#flushing ??= this.#flushOnce().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /** Stops the retry timer; entries still held are reported, not written. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#flushing?.catch(() => undefined);
  }

  #count(entry: UsageEntry, delta: number): void {
    const key = poolKey(entry.user, entry.org, entry.kind);
    const units = (this.#unwritten.get(key) ?? 0) + delta;
    if (units === 0) this.#unwritten.delete(key);
    else this.#unwritten.set(key, units);
    this.#unwrittenTotal += delta;
  }

  #chargeLanded(entry: UsageEntry): void {
    if (entry.chargeWritten) return;
    entry.chargeWritten = true;
    this.#count(entry, -entry.cost);
  }

  #remove(entry: JournalEntry, outcome: 'written' | 'lost'): void {
    if (!this.#entries.delete(entry.id)) return;
    if (entry.type === 'usage') this.#chargeLanded(entry);
    if (outcome === 'written') this.#written += 1;
    else this.#lost += 1;
  }

  /** Retries on a timer while anything is held; the timer never keeps the process alive. */
  #schedule(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => {
      void this.flush().then(({ remaining }) => {
        if (remaining === 0 && this.#timer !== null) {
          clearInterval(this.#timer);
          this.#timer = null;
        }
      });
    }, this.#options.flushIntervalMs);
    this.#timer.unref();
  }

  /**
   * The writes a usage entry needs now, in order, and whether they finish it. `justSplit` is true
   * when this pass is the first to send its charge apart (undone if that write is certain not sent).
   */
  #writesOf(entry: UsageEntry): { writes: JournalWrite[]; completes: boolean; justSplit: boolean } {
    const layout = this.#options.tollgate.keyLayout;
    // Each write in its pool's slot (cluster layout): its marker beside its counters.
    const write = (markerId: string, increments: Increment[]): JournalWrite => ({
      markerId,
      markerKey: layout.journalMarkerKey(entry.user, entry.org, markerId),
      group: layout.poolTag(entry.user, entry.org),
      day: entry.day,
      increments,
    });
    const settlement = (breakdown: Breakdown): JournalWrite => write(settlementMarker(entry.id), settlementIncrements(entry, breakdown, layout));
    if (entry.chargeWritten) {
      return entry.breakdown === null ? { writes: [], completes: false, justSplit: false } : { writes: [settlement(entry.breakdown)], completes: true, justSplit: false };
    }
    if (!entry.split && entry.breakdown !== null) {
      return { writes: [write(entry.id, usageIncrements(entry, entry.breakdown, layout))], completes: true, justSplit: false };
    }
    // The request is still running (or its charge was sent apart before, and may have landed): write
    // the charge alone, so a decision through Redis sees it, and the settlement under its own marker.
    const justSplit = !entry.split;
    entry.split = true;
    const charge = write(entry.id, chargeIncrements(entry, layout));
    return entry.breakdown === null
      ? { writes: [charge], completes: false, justSplit }
      : { writes: [charge, settlement(entry.breakdown)], completes: true, justSplit };
  }

  async #flushOnce(): Promise<FlushResult> {
    let written = 0;
    const pending: Array<{ entry: UsageEntry; writes: JournalWrite[]; completes: boolean; justSplit: boolean }> = [];
    for (const entry of this.#entries.values()) {
      if (entry.type !== 'usage') continue;
      const next = this.#writesOf(entry);
      if (next.writes.length > 0) pending.push({ entry, ...next });
    }
    if (pending.length > 0) {
      let statuses: Awaited<ReturnType<typeof writeJournalBatch>>;
      try {
        statuses = await bounded(this.#options.timeoutMs, () => writeJournalBatch(this.#options.tollgate.redis, pending.flatMap((p) => p.writes)));
      } catch (error) {
        const typed = toTollgateError(error);
        // Refused before it was sent: no charge of this pass can have landed, so entries may still be written whole.
        if (neverSent(typed)) for (const item of pending) if (item.justSplit) item.entry.split = false;
        if (!(typed instanceof RedisUnavailableError)) this.#options.log(`tollgate journal: write-back failed: ${describe(typed)}`);
        return { written, remaining: this.#entries.size };
      }
      let index = 0;
      for (const { entry, writes, completes } of pending) {
        const results = statuses.slice(index, index + writes.length);
        index += writes.length;
        if (results.includes('wrong_type')) {
          // Each write checks its own keys; a charge that landed stays, the rest of the entry cannot be written.
          if (results[0] !== 'wrong_type' && writes.length > 1) this.#chargeLanded(entry);
          this.#remove(entry, 'lost');
          this.#options.log(`tollgate journal: entry for user ${entry.user} lost: a key of it holds the wrong Redis type; it was not (fully) written`);
          continue;
        }
        this.#chargeLanded(entry);
        if (completes) {
          this.#remove(entry, 'written');
          written += 1;
        }
      }
    }
    for (const entry of [...this.#entries.values()]) {
      if (entry.type !== 'settle') continue;
      try {
        await this.#options.tollgate.settle(entry.reservation, entry.outcome);
        this.#remove(entry, 'written');
        written += 1;
      } catch (error) {
        const typed = toTollgateError(error);
        if (typed instanceof RedisUnavailableError) break;
        // Redis answered and refused this entry for good: retrying cannot help.
        this.#remove(entry, 'lost');
        this.#options.log(`tollgate journal: entry for user ${entry.reservation.user} lost: ${describe(typed)}`);
      }
    }
    return { written, remaining: this.#entries.size };
  }
}

function describe(error: TollgateError): string {
  return error instanceof ReservationError ? 'its reservation expired before Redis came back, so its charge stays' : `${error.code}: ${error.message}`;
}
