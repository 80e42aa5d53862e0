// Readiness of the demo service: one small function, so new reasons (e.g. demo users missing) merge cleanly.
import type { QuotaGuard, Tollgate } from 'tollgate';

/** The service's own check behind `/readyz` (the demo's: its accounts are present, re-seeded if lost). */
export type ServiceCheck = () => Promise<{ readonly ready: true; readonly [detail: string]: unknown } | { readonly ready: false; readonly reason: string }>;

/** What `/readyz` answers, besides `status`. */
export interface Readiness {
  readonly ready: boolean;
  readonly redis: 'up' | 'down';
  /** Quota kinds whose guard would admit without Redis now (fail-open on, journal not full). */
  readonly failOpen: readonly string[];
  /** Why it is not ready; empty when ready. `reason` is the first, for a one-line answer. */
  readonly reasons: readonly string[];
  readonly reason?: string;
  /** What the service check reported when it passed (e.g. `demoAccounts`). */
  readonly [detail: string]: unknown;
}

/**
 * Ready while Redis answers a PING within `timeoutMs` and the service's own check passes;
 * while Redis does not answer, ready only if some guard serves in fail-open mode (on, with
 * room in its journal), since those requests are still answered. A load balancer then keeps
 * sending traffic to a process that can serve it. One function, so new reasons merge here.
 */
export async function readiness(
  tollgate: Tollgate,
  guards: Readonly<Record<string, QuotaGuard>>,
  check?: ServiceCheck,
  timeoutMs = 1000,
): Promise<Readiness> {
  const reasons: string[] = [];
  let redis: 'up' | 'down' = 'up';
  try {
    await withTimeout(timeoutMs, tollgate.redis.ping());
  } catch {
    redis = 'down';
  }
  const failOpen = Object.entries(guards)
    .filter(([, guard]) => guard.options.failOpen && guard.journalStats().size < guard.journalStats().maxEntries)
    .map(([kind]) => kind);
  if (redis === 'down' && failOpen.length === 0) reasons.push('Redis does not answer and no guard serves in fail-open mode');
  let details: Record<string, unknown> = {};
  if (redis === 'up' && check !== undefined) {
    const checked = await check();
    if (checked.ready) {
      const { ready: _ready, ...rest } = checked;
      details = rest;
    } else {
      reasons.push(checked.reason);
    }
  }
  return { ...details, ready: reasons.length === 0, redis, failOpen, reasons, ...(reasons.length > 0 ? { reason: reasons[0] } : {}) };
}

/** Resolves as `promise` does, or rejects after `timeoutMs`: a silent Redis must not hang the check. */
async function withTimeout<T>(timeoutMs: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
