// Fail-open for any caller of consume(): admit known users locally while Redis is away, journal what they use, write it back.
import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { admits, assertCost, type Decision, type Outcome, type Reservation } from '../core/accounting.js';
import { MAX_API_KEY_LENGTH, sha256 } from '../core/api-keys.js';
import { dayMember, utcDay, yyyymm } from '../core/cycle.js';
import {
  AuthenticationError,
  ConflictError,
  ERROR_CODES,
  InvalidInputError,
  JournalFullError,
  RedisUnavailableError,
  type TollgateError,
} from '../core/errors.js';
import { BoundedLru } from '../core/lru.js';
import { assertName } from '../core/names.js';
import { quotaKindSpec, type QuotaKind } from '../core/quota-kinds.js';
import { neverSent, toTollgateError } from '../redis/connection.js';
import { supportsFailOpen } from '../redis/fail-open-support.js';
import { Tollgate, type Admission, type ConsumeRequest, type SettleResult } from '../tollgate.js';
import { LOCAL_ID_PREFIX, LocalJournal, poolKey, type FlushResult, type JournalStats } from './journal.js';

/** Options of {@link FailOpenTollgate}. Parsed once; unknown keys are rejected. */
export interface FailOpenOptions {
  /** The Tollgate client, built on a client from `connectForFailOpen` (checked here). */
  readonly tollgate: Tollgate;
  /** Entries the local journal holds at most. Default 10 000. */
  readonly journalMaxEntries?: number;
  /** How long a user's quota (and a verified key) learned through Redis may be relied on without it. Default 15 min. */
  readonly ttlMs?: number;
  /** Users (and pools) remembered for fail-open; the least recently used go first. Default 10 000. */
  readonly maxUsers?: number;
  /**
   * How many processes may fail open for the same users at once. Each admits locally at most
   * its share, `1/instances`, of what its last decision through Redis left; so together they
   * stay within the quota (up to how stale each one's view is). Default 1: the whole remainder.
   */
  readonly instances?: number;
  /** How often the journal retries while it holds anything. Default 1000 ms. */
  readonly flushIntervalMs?: number;
  /** Bound on each journal write-back call. Default 1000 ms. */
  readonly timeoutMs?: number;
  /** Where operational warnings go (never a key). Default: a `journal.warning` line through the Tollgate client's logger. */
  readonly log?: (message: string) => void;
}

const optionsSchema = z.strictObject({
  tollgate: z.custom<Tollgate>((value) => value instanceof Tollgate, 'must be a Tollgate client'),
  journalMaxEntries: z.number().int().min(1).max(1_000_000).default(10_000),
  ttlMs: z.number().int().min(1000).max(24 * 3_600_000).default(15 * 60_000),
  maxUsers: z.number().int().min(1).max(1_000_000).default(10_000),
  instances: z.number().int().min(1).max(10_000).default(1),
  flushIntervalMs: z.number().int().min(10).max(60_000).default(1000),
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
  log: z.custom<(message: string) => void>((value) => typeof value === 'function', 'must be a function').optional(),
});

/** {@link FailOpenOptions} as parsed: defaults filled in, frozen. */
export interface ResolvedFailOpenOptions extends FailOpenOptions {
  readonly journalMaxEntries: number;
  readonly ttlMs: number;
  readonly maxUsers: number;
  readonly instances: number;
  readonly flushIntervalMs: number;
  readonly timeoutMs: number;
}

// The schema's output must fit the published interface: the constructor stores one as the other.
type ParsedOptions = ResolvedFailOpenOptions;

/** An admission, and whether it was decided here without Redis (`failOpen: true`, journaled). */
export type FailOpenAdmission = Admission & {
  /** True when decided locally: Redis was away, or this process still held unwritten fail-open usage. */
  readonly failOpen: boolean;
};

/** What {@link FailOpenTollgate.settle} did. */
export interface FailOpenSettleResult {
  /**
   * `settled`/`already_settled` as {@link Tollgate.settle}; `journaled`: kept locally and written
   * when Redis answers; `dropped`: the journal was full, the units stay charged.
   */
  readonly status: SettleResult['status'] | 'journaled' | 'dropped';
}

/** What fail-open knows about a user for one kind from its last decision through Redis. */
interface KnownAccount {
  readonly org: string | null;
  readonly serviceType: string;
  readonly softLimit: boolean;
  readonly learnedAtMs: number;
}

/** What fail-open knows about a usage pool (an org's, or a user's own) for one kind. */
interface KnownPool {
  readonly quota: number;
  /** Usage as Redis last said (with this process's unwritten units). */
  readonly usedAtLearn: number;
  /** {@link usedAtLearn} plus every unit admitted here since (written back or not). */
  used: number;
  readonly cycleStart: Date;
  readonly resetsAt: Date;
  readonly learnedAtMs: number;
}

interface VerifiedKey {
  readonly digest: Buffer;
  readonly verifiedAtMs: number;
}

/** Request ids admitted locally, so a retry to this process is not counted twice. */
interface LocalReplay {
  readonly kind: QuotaKind;
  readonly cost: number;
  readonly admission: FailOpenAdmission;
}

/** Write-back passes one decision may wait for while they keep making progress. */
const WRITE_BACK_PASSES = 3;

/**
 * A Tollgate client that keeps admitting while Redis is away, for services that call
 * `consume()` themselves (the Express guard uses it too, with `failOpen: true`).
 *
 * - Through Redis whenever it answers and this process holds no unwritten fail-open usage:
 *   then it is exactly `tollgate.consume()`, and what it answers is remembered per user and pool.
 * - Locally when a consume was refused *before it was sent* (the client is disconnected), for
 *   users decided through Redis within `ttlMs`: judged with `admits()` against the last known
 *   quota and usage plus everything this process has admitted since; an admitted request takes
 *   a journal slot, and its reservation is settled with {@link settle} like any other.
 * - While this process holds fail-open units not yet written to Redis, every decision first waits
 *   for a write-back (batched, one script call per 500 entries); if some remain unwritten the
 *   decision stays local. So once Redis is back, no decision of this process misses its own
 *   journal. Other processes' journals are not seen: see docs/http.md for the bound.
 *
 * Anything else (timeouts, lost replies, unknown users, a full journal) throws as
 * `tollgate.consume()` would, or {@link JournalFullError}.
 */
export class FailOpenTollgate {
  readonly #options: Readonly<ParsedOptions>;
  readonly #tollgate: Tollgate;
  readonly #journal: LocalJournal;
  readonly #log: (message: string) => void;
  readonly #accounts: BoundedLru<string, KnownAccount>;
  readonly #pools: BoundedLru<string, KnownPool>;
  readonly #keys: BoundedLru<string, VerifiedKey>;
  readonly #replays: BoundedLru<string, LocalReplay>;

  constructor(options: FailOpenOptions) {
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'options'}: ${issue.message}`);
      throw new InvalidInputError(ERROR_CODES.invalidOptions, `invalid fail-open options: ${detail.join('; ')}`);
    }
    if (!supportsFailOpen(parsed.data.tollgate.redis)) {
      throw new InvalidInputError(
        ERROR_CODES.invalidOptions,
        'invalid fail-open options: fail-open needs a Tollgate whose ioredis client has enableOfflineQueue: false and ' +
          'autoResendUnfulfilledCommands: false (see connectForFailOpen); otherwise a command that timed out could still ' +
          'run when Redis returns and be counted twice',
      );
    }
    this.#options = Object.freeze(parsed.data);
    this.#tollgate = parsed.data.tollgate;
    this.#log = parsed.data.log ?? ((message: string) => parsed.data.tollgate.logger.warn({ event: 'journal.warning' }, message));
    this.#journal = new LocalJournal({
      tollgate: this.#tollgate,
      maxEntries: parsed.data.journalMaxEntries,
      timeoutMs: parsed.data.timeoutMs,
      flushIntervalMs: parsed.data.flushIntervalMs,
      log: this.#log,
    });
    const users = parsed.data.maxUsers;
    // A user has up to three kinds; pools are at most as many as users' kinds.
    this.#accounts = new BoundedLru(users * 3);
    this.#pools = new BoundedLru(users * 3);
    this.#keys = new BoundedLru(users);
    this.#replays = new BoundedLru(parsed.data.journalMaxEntries);
  }

  /** The parsed, frozen options. */
  get options(): Readonly<ResolvedFailOpenOptions> {
    return this.#options;
  }

  /** The Tollgate client decisions go through when Redis answers. */
  get tollgate(): Tollgate {
    return this.#tollgate;
  }

  /**
   * Judges and charges like `tollgate.consume()`, falling open as described on the class.
   * Throws the typed errors of `consume()`, and {@link JournalFullError} when it would admit
   * locally but the journal has no room (nothing served unrecorded).
   */
  async consume(request: ConsumeRequest): Promise<FailOpenAdmission> {
    const { user, kind, cost, requestId, keyDigest } = validate(request);
    if (this.#journal.hasUnwrittenCharges()) await this.#writeBack();
    if (this.#journal.hasUnwrittenCharges()) {
      // Redis (if it answers at all) does not have this process's journal yet: deciding there
      // would judge against a count that is too low.
      const cause = new RedisUnavailableError('fail-open usage is not written back to Redis yet');
      return this.#decideLocally(user, kind, cost, requestId, keyDigest, cause);
    }
    let admission: Admission;
    try {
      admission = await this.#tollgate.consume({
        user,
        kind,
        cost,
        ...(requestId === null ? {} : { requestId }),
        ...(request.apiKey === undefined ? {} : { apiKey: request.apiKey }),
      });
    } catch (error) {
      const typed = toTollgateError(error);
      // Only a command refused before it was sent is certain never to be counted by Redis too.
      if (typed instanceof RedisUnavailableError && neverSent(typed)) return this.#decideLocally(user, kind, cost, requestId, keyDigest, typed);
      throw typed;
    }
    // Any answer means Redis accepted the key: it may be recognised while Redis is away.
    if (keyDigest !== null) this.rememberKey(user, keyDigest);
    // A replay answers with the usage of its first admission: not news about the pool.
    if (!admission.replayed) this.#remember(admission);
    return { ...admission, failOpen: false };
  }

  /**
   * Records how an admitted request ended, whichever way it was admitted. A local reservation
   * completes its journal entry; another is settled through Redis, and journaled when Redis
   * cannot be reached (`journaled`), or dropped when the journal is full (`dropped`: its units
   * stay charged, never an under-count). Throws the typed errors of `tollgate.settle()` otherwise.
   */
  async settle(reservation: Reservation, outcome: Outcome): Promise<FailOpenSettleResult> {
    if (typeof reservation === 'object' && reservation !== null && typeof reservation.id === 'string' && reservation.id.startsWith(LOCAL_ID_PREFIX)) {
      const entry = this.#journal.usageEntry(reservation.id);
      // Gone from the journal: settled and written before. A local reservation never reaches Redis' settle.
      if (entry === undefined) return { status: 'already_settled' };
      if (entry.breakdown !== null) return { status: 'already_settled' };
      this.#journal.completeUsage(entry, outcome);
      return { status: 'journaled' };
    }
    try {
      return await this.#tollgate.settle(reservation, outcome);
    } catch (error) {
      const typed = toTollgateError(error);
      if (!(typed instanceof RedisUnavailableError)) throw typed;
      if (this.#journal.addSettle(reservation, outcome)) return { status: 'journaled' };
      this.#log('tollgate: journal full, a settlement was dropped: its units stay charged');
      return { status: 'dropped' };
    }
  }

  /** Whether `reservation` was made here without Redis and is still held by the journal (not yet settled). */
  holds(reservation: Reservation): boolean {
    if (typeof reservation?.id !== 'string' || !reservation.id.startsWith(LOCAL_ID_PREFIX)) return false;
    const entry = this.#journal.usageEntry(reservation.id);
    return entry !== undefined && entry.breakdown === null;
  }

  /** Writes what the journal holds now; resolves with what was written and what remains. */
  flush(): Promise<FlushResult> {
    return this.#journal.flush();
  }

  /** Journal counters: entries held, unwritten units, written, dropped, lost. */
  stats(): JournalStats {
    return this.#journal.stats();
  }

  /** Remembers that `user` proved the key with this digest against Redis just now (for authenticators). */
  rememberKey(user: string, digest: Buffer): void {
    this.#keys.set(user, { digest, verifiedAtMs: Date.now() });
  }

  /** Whether `user` proved this very key within `ttlMs`: the only way to recognise a caller without Redis. */
  recognisesKey(user: string, digest: Buffer): boolean {
    const known = this.#keys.get(user);
    if (known === undefined || Date.now() - known.verifiedAtMs > this.#options.ttlMs) return false;
    return known.digest.length === digest.length && timingSafeEqual(known.digest, digest);
  }

  /**
   * Makes a last write-back attempt and stops the retry timer; logs how many entries could not
   * be written (they are lost with the process). Settle reservations first: a local one never
   * settled keeps its whole charge. Does not close the Tollgate client.
   */
  async close(): Promise<void> {
    await this.#journal.flush().catch(() => undefined);
    const { size } = this.#journal.stats();
    if (size > 0) this.#log(`tollgate: closing with ${size} journal entries not written to Redis; they are lost`);
    await this.#journal.close();
  }

  /** Writes the journal back, again while passes keep shrinking what is unwritten (requests admitted meanwhile). */
  async #writeBack(): Promise<void> {
    // Disconnected: a write-back would be refused unsent anyway; skip building it on every request of an outage.
    if (this.#tollgate.redis.status !== 'ready') return;
    for (let pass = 0; pass < WRITE_BACK_PASSES && this.#journal.hasUnwrittenCharges(); pass += 1) {
      const before = this.#journal.stats().unwrittenUnits;
      await this.#journal.flush();
      if (this.#journal.stats().unwrittenUnits >= before) return;
    }
  }

  #remember(decision: Decision): void {
    const learnedAtMs = Date.now();
    this.#accounts.set(accountKey(decision.user, decision.kind), {
      org: decision.org,
      serviceType: decision.serviceType,
      softLimit: decision.softLimit,
      learnedAtMs,
    });
    const pool = poolKey(decision.user, decision.org, decision.kind);
    // Units this process admitted locally and Redis does not hold yet belong to the pool too.
    const used = decision.used + this.#journal.unwrittenUnits(pool);
    this.#pools.set(pool, {
      quota: decision.quota,
      usedAtLearn: used,
      used,
      cycleStart: decision.cycleStart,
      resetsAt: decision.resetsAt,
      learnedAtMs,
    });
  }

  /** A decision without Redis: only for a user decided through Redis recently, against what is known. */
  #decideLocally(
    user: string,
    kind: QuotaKind,
    cost: number,
    requestId: string | null,
    keyDigest: Buffer | null,
    cause: TollgateError,
  ): FailOpenAdmission {
    // A key cannot be checked without Redis: only one proven against it recently is accepted.
    if (keyDigest !== null && !this.recognisesKey(user, keyDigest)) throw cause;
    const nowMs = Date.now();
    const account = this.#accounts.get(accountKey(user, kind));
    const poolName = account === undefined ? null : poolKey(user, account.org, kind);
    const pool = poolName === null ? undefined : this.#pools.get(poolName);
    const ttlMs = this.#options.ttlMs;
    if (account === undefined || pool === undefined || nowMs - account.learnedAtMs > ttlMs || nowMs - pool.learnedAtMs > ttlMs || nowMs >= pool.resetsAt.getTime()) {
      throw cause;
    }
    const replayKey = requestId === null ? null : `${user}\n${requestId}`;
    if (replayKey !== null) {
      const replay = this.#replays.get(replayKey);
      if (replay !== undefined) {
        if (replay.kind !== kind || replay.cost !== cost) {
          throw new ConflictError(ERROR_CODES.requestIdReused, 'this request id was used for another request (kind or cost differs); nothing was charged');
        }
        return replay.admission;
      }
    }
    const base = {
      user,
      org: account.org,
      kind,
      serviceType: account.serviceType,
      quota: pool.quota,
      cost,
      softLimit: account.softLimit,
      cycleStart: pool.cycleStart,
      resetsAt: pool.resetsAt,
      credits: null,
      failOpen: true,
    } as const;
    // This process's share of what was left when it last asked Redis (all of it with one instance).
    const share = pool.usedAtLearn + Math.floor(Math.max(0, pool.quota - pool.usedAtLearn) / this.#options.instances);
    const rule = { softLimit: account.softLimit, used: pool.used, cost };
    if (!admits({ ...rule, quota: pool.quota }) || !admits({ ...rule, quota: share })) {
      return Object.freeze({
        ...base,
        allowed: false,
        reason: pool.quota === 0 ? 'no_quota' : 'quota_exceeded',
        used: pool.used,
        remaining: Math.max(0, pool.quota - pool.used),
        reservation: null,
        replayed: false,
      });
    }
    const today = utcDay(nowMs);
    const entry = this.#journal.reserveUsage({
      user,
      org: account.org,
      kind,
      serviceType: account.serviceType,
      yyyymm: yyyymm(today.year, today.month),
      day: dayMember(today.day),
      cost,
    });
    if (entry === null) throw new JournalFullError('Redis is unavailable and the fail-open journal is full', { cause });
    pool.used += cost;
    const reservation: Reservation = Object.freeze({
      id: entry.id,
      user,
      org: account.org,
      kind,
      serviceType: account.serviceType,
      yyyymm: entry.yyyymm,
      day: entry.day,
      cost,
    });
    const admitted = {
      ...base,
      allowed: true,
      reason: account.softLimit ? 'soft_limit' : 'within_quota',
      used: pool.used,
      remaining: Math.max(0, pool.quota - pool.used),
      reservation,
    } as const;
    if (replayKey !== null) this.#replays.set(replayKey, { kind, cost, admission: Object.freeze({ ...admitted, replayed: true }) });
    return Object.freeze({ ...admitted, replayed: false });
  }
}

const accountKey = (user: string, kind: QuotaKind): string => `${user}\n${kind}`;

/** The same checks as `tollgate.consume()`, made here because a local decision never reaches it. */
function validate(request: ConsumeRequest): { user: string; kind: QuotaKind; cost: number; requestId: string | null; keyDigest: Buffer | null } {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidInputError(ERROR_CODES.invalidArgument, 'expected a request object');
  }
  const user = assertName('user', request.user);
  const kind = quotaKindSpec(request.kind).kind;
  const cost = assertCost(request.cost === undefined ? 1 : request.cost);
  const requestId = request.requestId === undefined ? null : assertName('request id', request.requestId);
  const apiKey: unknown = request.apiKey;
  if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey.length === 0 || apiKey.length > MAX_API_KEY_LENGTH)) throw new AuthenticationError();
  return { user, kind, cost, requestId, keyDigest: apiKey === undefined ? null : sha256(apiKey as string) };
}
