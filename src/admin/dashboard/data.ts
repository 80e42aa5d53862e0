// What the usage dashboard shows for a user or an org: per-service bars, daily use over the cycle, projections, members, credits.
import { poolOwner } from '../../core/accounting.js';
import { assertName } from '../../core/names.js';
import { projectExhaustion, type Projection } from '../../core/projection.js';
import { QUOTA_KINDS, quotaKindSpec, type QuotaKind } from '../../core/quota-kinds.js';
import { serverTimeMs } from '../../redis/accounts.js';
import { readDailyUsage, type DailyUsage } from '../../redis/daily-usage.js';
import { configKeySearchPattern, nameOfConfigKey } from '../../redis/homes.js';
import { scanBatches } from '../../redis/scan.js';
import type { Tollgate } from '../../tollgate.js';
import type { AdminOperations, OrgCredits, UserCredits } from '../operations.js';

/** One service's bar, chart and projection. */
export interface ServicePanel {
  readonly kind: QuotaKind;
  readonly serviceType: string;
  readonly provider: string;
  readonly quota: number;
  readonly used: number;
  readonly remaining: number;
  readonly softLimit: boolean;
  readonly cycleStart: string;
  readonly resetsAt: string;
  /** Counted units per day from the cycle start to today, of the pool the quota applies to. */
  readonly daily: readonly DailyUsage[];
  readonly projection: Projection;
}

/** A member of an org and its share of the pool per service. */
export interface MemberShare {
  readonly username: string;
  readonly used: Readonly<Record<QuotaKind, number>>;
  /** The member's own use / the pool's use, 0..1 (0 when the pool is unused). */
  readonly share: Readonly<Record<QuotaKind, number>>;
}

/** Everything the dashboard draws for one user or org. */
export interface DashboardData {
  readonly type: 'user' | 'org';
  readonly name: string;
  /** The org whose pool a member spends; the org itself for an org; `null` for a lone user. */
  readonly org: string | null;
  /** `YYYY-MM-DD`, UTC, by the Redis server's clock. */
  readonly today: string;
  readonly services: readonly ServicePanel[];
  readonly members: readonly MemberShare[];
  /** Budget of a member (user view) or the org's (org view), when budgeting is on; else `null`. */
  readonly credits: UserCredits | OrgCredits | null;
}

/** A search hit. */
export interface SearchHit {
  readonly type: 'user' | 'org';
  readonly name: string;
}

/** Most hits a search returns per type. */
export const SEARCH_LIMIT = 20;

/**
 * Users and orgs whose name contains `query` (a SCAN over the config hashes; fine for an
 * operator's search, not for a hot path). An empty query lists the first ones found.
 */
export async function search(tollgate: Tollgate, query: string): Promise<SearchHit[]> {
  if (query !== '') assertName('user', query);
  const hits: SearchHit[] = [];
  for (const type of ['user', 'org'] as const) {
    const layout = tollgate.keyLayout;
    const found: string[] = [];
    for await (const batch of scanBatches(tollgate.redis, configKeySearchPattern(layout, type, query))) {
      for (const key of batch.keys) {
        const name = nameOfConfigKey(layout, type, key);
        if (name !== null && found.length < SEARCH_LIMIT) found.push(name);
      }
      if (found.length >= SEARCH_LIMIT) break;
    }
    found.sort();
    hits.push(...found.map((name) => ({ type, name })));
  }
  return hits;
}

async function panel(
  tollgate: Tollgate,
  kind: QuotaKind,
  figures: { quota: number; used: number; softLimit: boolean; provider: string; serviceType: string; cycleStart: Date; resetsAt: Date },
  pool: { type: 'user' | 'org'; name: string },
  nowMs: number,
): Promise<ServicePanel> {
  const home = pool.type === 'org' ? pool.name : null;
  const daily = await readDailyUsage(tollgate.redis, tollgate.keyLayout, pool, home, figures.serviceType, quotaKindSpec(kind).countedMetrics, figures.cycleStart.getTime(), nowMs);
  return {
    kind,
    serviceType: figures.serviceType,
    provider: figures.provider,
    quota: figures.quota,
    used: figures.used,
    remaining: Math.max(0, figures.quota - figures.used),
    softLimit: figures.softLimit,
    cycleStart: figures.cycleStart.toISOString(),
    resetsAt: figures.resetsAt.toISOString(),
    daily,
    projection: projectExhaustion({
      quota: figures.quota,
      used: figures.used,
      softLimit: figures.softLimit,
      cycleStartMs: figures.cycleStart.getTime(),
      resetsAtMs: figures.resetsAt.getTime(),
      nowMs,
    }),
  };
}

/** The members of `org` and each one's share of the pool. */
async function memberShares(ops: AdminOperations, org: string): Promise<{ members: MemberShare[]; credits: OrgCredits }> {
  const view = await ops.showOrg(org);
  const pool: Record<QuotaKind, number> = { geocoding: view.geocoding.monthly_use, isolines: view.here_isolines.monthly_use, routing: view.mapzen_routing.monthly_use };
  const members = view.members.map((member) => {
    const used: Record<QuotaKind, number> = { geocoding: member.geocoding, isolines: member.here_isolines, routing: member.mapzen_routing };
    const share = Object.fromEntries(QUOTA_KINDS.map((kind) => [kind, pool[kind] === 0 ? 0 : used[kind] / pool[kind]])) as Record<QuotaKind, number>;
    return { username: member.username, used, share };
  });
  return { members, credits: view.credits };
}

/** The dashboard of one user (its pool's figures when it is an org member) or one org. */
export async function dashboardData(
  tollgate: Tollgate,
  ops: AdminOperations,
  target: { readonly user: string } | { readonly org: string },
  clock?: () => number,
): Promise<DashboardData> {
  const nowMs = clock?.() ?? (await serverTimeMs(tollgate.redis));
  const today = new Date(nowMs).toISOString().slice(0, 10);
  if ('user' in target) {
    const user = assertName('user', target.user);
    const view = await ops.showUser(user);
    const infos = await Promise.all(QUOTA_KINDS.map((kind) => tollgate.quota({ user, kind })));
    const pool = poolOwner(user, view.organization);
    const services = await Promise.all(infos.map((info) => panel(tollgate, info.kind, info, pool, nowMs)));
    const members = view.organization === null ? [] : (await memberShares(ops, view.organization)).members;
    return { type: 'user', name: user, org: view.organization, today, services, members, credits: view.credits?.enabled ? view.credits : null };
  }
  const org = assertName('org', target.org);
  const view = await ops.showOrg(org);
  const blocks = [view.geocoding, view.here_isolines, view.mapzen_routing];
  const providers = [view.geocoder_provider, view.isolines_provider, view.routing_provider];
  const services = await Promise.all(
    QUOTA_KINDS.map(async (kind, index) => {
      const usage = await tollgate.usage({ org, kind });
      const block = blocks[index]!;
      return panel(
        tollgate,
        kind,
        { quota: block.quota, used: usage.used, softLimit: false, provider: providers[index]!, serviceType: usage.serviceType, cycleStart: usage.cycleStart, resetsAt: usage.resetsAt },
        { type: 'org', name: org },
        nowMs,
      );
    }),
  );
  const { members } = await memberShares(ops, org);
  return { type: 'org', name: org, org, today, services, members, credits: view.credits.enabled ? view.credits : null };
}
