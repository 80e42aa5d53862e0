// The bounded in-memory journal of what could not reach Redis: fail-open usage and unsent settlements.
import { randomUUID } from 'node:crypto';
import {
  admissionKeys,
  breakdownOf,
  settlementIncrements,
  type Breakdown,
  type Increment,
  type Outcome,
  type Reservation,
} from '../core/accounting.js';
import { RedisUnavailableError, ReservationError, TollgateError } from '../core/errors.js';
import { bounded, toTollgateError } from '../redis/connection.js';
import { writeJournalEntry } from '../redis/journal-writeback.js';
import type { Tollgate } from '../tollgate.js';

/** Units a fail-open request consumed while Redis was down, to be written when it is back. */
export interface UsageEntry extends Reservation {
  readonly type: 'usage';
  /** How the request ended; `null` while it is still in flight (not written yet). */
  breakdown: Breakdown | null;
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
  /** Entries written to Redis since start. */
  readonly written: number;
  /** Settlements dropped because the journal was full: their units stay charged. */
  readonly dropped: number;
  /** Entries Redis refused for good (an expired reservation, a key of the wrong type). */
  readonly lost: number;
}

/** What one {@link LocalJournal.flush} achieved. */
export interface FlushResult {
  readonly written: number;
  /** Entries still held: in flight, or waiting for Redis. */
  readonly remaining: number;
}

/**
 * Every usage increment a fail-open request adds, exactly as an admission followed by a
 * settlement would have: the charge (charged metric and total_requests, user and org),
 * then the settlement's moves, merged per key.
 */
export function usageIncrements(entry: UsageEntry, breakdown: Breakdown): Increment[] {
  const charge: Increment[] = admissionKeys(entry).map((key) => ({ key, delta: entry.cost }));
  const totals = new Map<string, number>();
  for (const { key, delta } of [...charge, ...settlementIncrements(entry, breakdown)]) {
    totals.set(key, (totals.get(key) ?? 0) + delta);
  }
  return [...totals].filter(([, delta]) => delta !== 0).map(([key, delta]) => ({ key, delta }));
}

/** Construction parameters of a {@link LocalJournal}; already validated by the guard's options. */
export interface LocalJournalOptions {
  readonly tollgate: Tollgate;
  readonly maxEntries: number;
  readonly timeoutMs: number;
  readonly flushIntervalMs: number;
  readonly log: (message: string) => void;
}

/**
 * A bounded, in-memory, per-process journal. Usage entries are written with a marker key so
 * a repeated write-back counts once; settlement entries rely on settle's own idempotency.
 * It lives in memory only: when the process dies, what it holds is gone (see docs/http.md).
 */
export class LocalJournal {
  readonly #entries = new Map<string, JournalEntry>();
  readonly #options: LocalJournalOptions;
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
      written: this.#written,
      dropped: this.#dropped,
      lost: this.#lost,
    };
  }

  /** Takes a slot for a fail-open request before it runs; `null` when the journal is full. */
  reserveUsage(fields: Omit<UsageEntry, 'type' | 'id' | 'breakdown'>): UsageEntry | null {
    if (this.#entries.size >= this.#options.maxEntries) return null;
    const entry: UsageEntry = { ...fields, type: 'usage', id: randomUUID(), breakdown: null };
    this.#entries.set(entry.id, entry);
    return entry;
  }

  /** Records how a fail-open request ended; from now on the entry may be written. */
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
   * Writes every completed entry, oldest first, stopping at the first sign that Redis is
   * still away. Concurrent calls share one pass.
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

  async #flushOnce(): Promise<FlushResult> {
    let written = 0;
    for (const entry of [...this.#entries.values()]) {
      if (entry.type === 'usage' && entry.breakdown === null) continue;
      try {
        await this.#write(entry);
        written += 1;
        this.#written += 1;
        this.#entries.delete(entry.id);
      } catch (error) {
        const typed = toTollgateError(error);
        if (typed instanceof RedisUnavailableError) break;
        // Redis answered and refused this entry for good: retrying cannot help.
        this.#lost += 1;
        this.#entries.delete(entry.id);
        this.#options.log(`tollgate journal: entry for user ${entry.type === 'usage' ? entry.user : entry.reservation.user} lost: ${describe(typed)}`);
      }
    }
    return { written, remaining: this.#entries.size };
  }

  async #write(entry: JournalEntry): Promise<void> {
    if (entry.type === 'settle') {
      await this.#options.tollgate.settle(entry.reservation, entry.outcome);
      return;
    }
    const breakdown = entry.breakdown as Breakdown;
    await bounded(this.#options.timeoutMs, () =>
      writeJournalEntry(this.#options.tollgate.redis, entry.id, entry.day, usageIncrements(entry, breakdown)),
    );
  }
}

function describe(error: TollgateError): string {
  return error instanceof ReservationError ? 'its reservation expired before Redis came back, so its charge stays' : `${error.code}: ${error.message}`;
}
