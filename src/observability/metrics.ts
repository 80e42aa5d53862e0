// Prometheus metrics with prom-client: a TollgateObserver that counts decisions, units, settles, Redis errors, cache hits and fail-open state.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type {
  DecisionEvent,
  JournalFigures,
  RedisErrorEvent,
  SettleEvent,
  TollgateObserver,
  UnitsEvent,
} from '../core/observer.js';
import type { QuotaKind } from '../core/quota-kinds.js';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Where the metrics are registered. Default: a new registry of their own. */
  readonly registry?: Registry;
  /** Prefix of every metric name. Default `tollgate_`. */
  readonly prefix?: string;
  /** Also register prom-client's default Node.js process metrics (CPU, memory, event loop). Default false. */
  readonly processMetrics?: boolean;
}

/** The metrics and the observer that feeds them. */
export interface TollgateMetrics {
  /** The registry holding them: serve `await registry.metrics()` with `registry.contentType`. */
  readonly registry: Registry;
  /** Pass to `new Tollgate({ observer })` (alone, or with `combineObservers`). */
  readonly observer: TollgateObserver;
}

/**
 * Decision latency buckets in seconds: a cached decision takes well under a millisecond of
 * Redis time, a cold one two or three round trips, a timeout the client's `timeoutMs` (1 s).
 */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Label values and a running total, kept per distinct label set. */
interface Series<L extends string> {
  readonly labels: Record<L, string>;
  value: number;
}

/**
 * Running totals per label set, kept as plain numbers: a request adds to a number found by
 * one Map lookup, and prom-client sees them only when scraped (`collect`). prom-client's
 * own `inc()` hashes the label set on every call, which costs microseconds per request.
 */
class Tally<L extends string> {
  readonly series = new Map<string, Series<L>>();

  /** Adds to the series of `key`; `false` when there is none yet (then call {@link create}). No closure: one costs ~0.3 µs here. */
  add(key: string, amount: number): boolean {
    const found = this.series.get(key);
    if (found === undefined) return false;
    found.value += amount;
    return true;
  }

  create(key: string, labels: Record<L, string>, amount: number): void {
    this.series.set(key, { labels, value: amount });
  }
}

/** A counter whose values come from a {@link Tally} at scrape time. */
function tallyCounter<L extends string>(name: string, help: string, labelNames: readonly L[], registers: Registry[]): Tally<L> {
  const tally = new Tally<L>();
  new Counter({
    name,
    help,
    labelNames,
    registers,
    collect(this: Counter<L>) {
      this.reset();
      for (const { labels, value } of tally.series.values()) this.inc(labels as never, value);
    },
  });
  return tally;
}

/** Bucket counts of one label set of the latency histogram. */
interface LatencySeries {
  readonly labels: { kind: string; mode: string };
  readonly buckets: number[];
  sum: number;
  count: number;
}

/**
 * The decision latency histogram, counted in plain arrays and rendered in Prometheus's
 * histogram shape (`_bucket{le}`, `_sum`, `_count`) when scraped.
 */
function latencyHistogram(name: string, help: string, registry: Registry) {
  const series = new Map<string, LatencySeries>();
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      values: [...series.values()].flatMap((entry) => {
        let cumulative = 0;
        const buckets = LATENCY_BUCKETS.map((le, index) => {
          cumulative += entry.buckets[index]!;
          return { labels: { ...entry.labels, le }, value: cumulative, metricName: `${name}_bucket` };
        });
        return [
          ...buckets,
          { labels: { ...entry.labels, le: '+Inf' }, value: entry.count, metricName: `${name}_bucket` },
          { labels: entry.labels, value: entry.sum, metricName: `${name}_sum` },
          { labels: entry.labels, value: entry.count, metricName: `${name}_count` },
        ];
      }),
    }),
    reset: () => series.clear(),
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  return {
    observe(kind: string, mode: string, seconds: number): void {
      const key = `${kind}|${mode}`;
      let entry = series.get(key);
      if (entry === undefined) {
        entry = { labels: { kind, mode }, buckets: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
        series.set(key, entry);
      }
      let index = 0;
      while (index < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[index]!) index += 1;
      if (index < LATENCY_BUCKETS.length) entry.buckets[index]! += 1;
      entry.sum += seconds;
      entry.count += 1;
    },
  };
}

/**
 * Creates Tollgate's metrics (listed in docs/observability.md). Labels are bounded sets:
 * quota kind, service type (one per provider), result, outcome; never a user or org name,
 * whose per-user figures live in Redis already.
 */
export function createMetrics(options: MetricsOptions = {}): TollgateMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'tollgate_';
  const registers = [registry];

  const decisions = tallyCounter(
    `${prefix}decisions_total`,
    'Decisions answered through Redis, by quota kind, service type, mode (check/consume) and result',
    ['kind', 'service_type', 'mode', 'result'] as const,
    registers,
  );
  const latency = latencyHistogram(`${prefix}decision_duration_seconds`, 'Wall time of a check or consume, config read and retries included', registry);
  const charged = tallyCounter(`${prefix}units_charged_total`, 'Units charged by admissions through Redis', ['kind', 'service_type'] as const, registers);
  const refunded = tallyCounter(`${prefix}units_refunded_total`, 'Units refunded by settlements (the failed part)', ['kind', 'service_type'] as const, registers);
  const settles = tallyCounter(
    `${prefix}settles_total`,
    'Settlements by outcome (success, empty, failed, split) and status (settled, already_settled, journaled, rejected)',
    ['kind', 'outcome', 'status'] as const,
    registers,
  );
  const redisErrors = tallyCounter(`${prefix}redis_errors_total`, 'Calls Redis could not serve, by operation and reason (timeout, unavailable)', ['operation', 'reason'] as const, registers);
  const cache = tallyCounter(`${prefix}config_cache_lookups_total`, 'Config lookups by result (hit: served from the cache, miss: read from Redis)', ['result'] as const, registers);
  const failOpenAdmissions = tallyCounter(`${prefix}fail_open_admissions_total`, 'Requests a guard admitted without Redis (fail-open), journaled for write-back', ['kind'] as const, registers);
  const failOpenServing = new Gauge({
    name: `${prefix}fail_open_serving`,
    help: '1 while a guard admits without Redis (its last admission was fail-open), else 0',
    labelNames: ['kind'] as const,
    registers,
  });

  const journals = new Map<QuotaKind, Array<() => JournalFigures>>();
  const sumJournals = (pick: (figures: JournalFigures) => number) =>
    function collect(this: Gauge<'kind'>): void {
      this.reset();
      for (const [kind, reads] of journals) this.set({ kind }, reads.reduce((sum, read) => sum + pick(read()), 0));
    };
  new Gauge({ name: `${prefix}journal_entries`, help: 'Entries the fail-open journals hold now', labelNames: ['kind'] as const, registers, collect: sumJournals((f) => f.size) });
  new Gauge({ name: `${prefix}journal_capacity`, help: 'Entries the fail-open journals may hold', labelNames: ['kind'] as const, registers, collect: sumJournals((f) => f.maxEntries) });
  new Gauge({ name: `${prefix}journal_written`, help: 'Journal entries written back to Redis since start', labelNames: ['kind'] as const, registers, collect: sumJournals((f) => f.written) });
  new Gauge({ name: `${prefix}journal_dropped`, help: 'Settlements dropped because a journal was full (their units stay charged)', labelNames: ['kind'] as const, registers, collect: sumJournals((f) => f.dropped) });
  new Gauge({ name: `${prefix}journal_lost`, help: 'Journal entries Redis refused for good', labelNames: ['kind'] as const, registers, collect: sumJournals((f) => f.lost) });

  if (options.processMetrics === true) collectDefaultMetrics({ register: registry, prefix });

  const servingNow = new Map<QuotaKind, boolean>();
  // Not frozen: a frozen object's methods measured slower to call on the request path.
  const observer: TollgateObserver = {
    decision(event: DecisionEvent): void {
      const { kind, serviceType, mode, result } = event;
      if (!decisions.add(`${kind}|${serviceType}|${mode}|${result}`, 1)) decisions.create(`${kind}|${serviceType}|${mode}|${result}`, { kind, service_type: serviceType, mode, result }, 1);
      latency.observe(kind, mode, event.seconds);
    },
    charged(event: UnitsEvent): void {
      const { kind, serviceType } = event;
      if (!charged.add(`${kind}|${serviceType}`, event.units)) charged.create(`${kind}|${serviceType}`, { kind, service_type: serviceType }, event.units);
    },
    refunded(event: UnitsEvent): void {
      const { kind, serviceType } = event;
      if (!refunded.add(`${kind}|${serviceType}`, event.units)) refunded.create(`${kind}|${serviceType}`, { kind, service_type: serviceType }, event.units);
    },
    settled(event: SettleEvent): void {
      const { kind, outcome, status } = event;
      if (!settles.add(`${kind}|${outcome}|${status}`, 1)) settles.create(`${kind}|${outcome}|${status}`, { kind, outcome, status }, 1);
    },
    redisError(event: RedisErrorEvent): void {
      const { operation, reason } = event;
      if (!redisErrors.add(`${operation}|${reason}`, 1)) redisErrors.create(`${operation}|${reason}`, { operation, reason }, 1);
    },
    redisUp(): void {},
    configCache(hit: boolean): void {
      if (!cache.add(hit ? 'hit' : 'miss', 1)) cache.create(hit ? 'hit' : 'miss', { result: hit ? 'hit' : 'miss' }, 1);
    },
    failOpen(kind: QuotaKind, serving: boolean): void {
      if (serving) if (!failOpenAdmissions.add(kind, 1)) failOpenAdmissions.create(kind, { kind }, 1);
      // Called on every request of a fail-open guard: touch the gauge only when the state flips.
      if (servingNow.get(kind) === serving) return;
      servingNow.set(kind, serving);
      failOpenServing.set({ kind }, serving ? 1 : 0);
    },
    journal(kind: QuotaKind, read: () => JournalFigures): void {
      const reads = journals.get(kind) ?? [];
      reads.push(read);
      journals.set(kind, reads);
    },
  };
  return Object.freeze({ registry, observer });
}
