// Credit budgets in the atomic decision: allocations, the org balance as the real limit, refunds, and races that count exactly.
import { afterEach, describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { cleanup, snapshot, uniqueName, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const names: string[] = [];
afterEach(async () => {
  await cleanup(redis.client(), names.splice(0));
});

// Geocoding at 40 credits per 1000 = 40 millicredits a unit (the documented default).
const PRICE = 40;

async function budgetedOrg(options: { balance: number; enabled?: boolean; quota?: number }): Promise<string> {
  const org = uniqueName('org');
  names.push(org);
  await writeOrg(redis.client(), org, {
    geocoding_quota: String(options.quota ?? 1_000_000),
    credits_balance_millicredits: String(options.balance),
    credits_enabled: options.enabled === false ? 'false' : 'true',
  });
  return org;
}

async function member(org: string, allocation?: number): Promise<string> {
  const user = uniqueName('user');
  names.push(user);
  const fields: Record<string, string> = { organization: org };
  if (allocation !== undefined) fields.credits_allocation_millicredits = String(allocation);
  await writeUser(redis.client(), user, fields);
  return user;
}

const balanceOf = async (org: string): Promise<string | null> =>
  redis.client().hget(`rails:orgs:${org}`, 'credits_balance_millicredits');
const spentOf = async (user: string): Promise<string | null> =>
  redis.client().hget(`rails:users:${user}`, 'credits_spent_millicredits');
const ledgerOf = async (type: 'user' | 'org', name: string): Promise<number> => {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.client().scan(cursor, 'MATCH', `tollgate:credits:${type}:${name}:*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  let sum = 0;
  for (const key of keys) {
    const flat = await redis.client().zrange(key, 0, '-1', 'WITHSCORES');
    for (let i = 1; i < flat.length; i += 2) sum += Number(flat[i]);
  }
  return sum;
};

describe('credit budgets', () => {
  it('charges nothing and reports no credits when budgeting is off', async () => {
    const org = await budgetedOrg({ balance: 100, enabled: false });
    const user = await member(org, 10);
    const tollgate = new Tollgate({ redis: redis.client() });
    const admission = await tollgate.consume({ user, kind: 'geocoding', cost: 50 });
    expect(admission.allowed).toBe(true);
    expect(admission.credits).toBeNull();
    expect(await balanceOf(org)).toBe('100');
    expect(await ledgerOf('user', user)).toBe(0);
  });

  it('admits up to the allocation, then denies with credits_exhausted and writes nothing', async () => {
    const org = await budgetedOrg({ balance: 1_000_000 });
    const user = await member(org, 1000); // 1 credit = 25 geocodes at 40 millicredits
    const tollgate = new Tollgate({ redis: redis.client() });
    const first = await tollgate.consume({ user, kind: 'geocoding', cost: 25 });
    expect(first.allowed).toBe(true);
    expect(first.credits).toEqual({ costMillicredits: 25 * PRICE, availableMillicredits: 0 });
    expect(await spentOf(user)).toBe('1000');
    expect(await balanceOf(org)).toBe(String(1_000_000 - 1000));

    const before = await snapshot(redis.client(), [user, org]);
    const denied = await tollgate.consume({ user, kind: 'geocoding' });
    expect(denied.allowed).toBe(false);
    expect(denied.reason).toBe('credits_exhausted');
    expect(denied.reservation).toBeNull();
    expect(await snapshot(redis.client(), [user, org])).toEqual(before);
  });

  it('a check judges credits without spending them', async () => {
    const org = await budgetedOrg({ balance: 80 });
    const user = await member(org);
    const tollgate = new Tollgate({ redis: redis.client() });
    const before = await snapshot(redis.client(), [user, org]);
    expect((await tollgate.check({ user, kind: 'geocoding', cost: 2 })).allowed).toBe(true);
    expect((await tollgate.check({ user, kind: 'geocoding', cost: 3 })).reason).toBe('credits_exhausted');
    expect(await snapshot(redis.client(), [user, org])).toEqual(before);
    expect((await tollgate.checkBulk({ user, kind: 'geocoding', cost: 10 })).admissible).toBe(2);
  });

  it('the org balance stays the real limit when allocations add up to more', async () => {
    const org = await budgetedOrg({ balance: 10 * PRICE });
    const a = await member(org, 8 * PRICE);
    const b = await member(org, 8 * PRICE);
    const tollgate = new Tollgate({ redis: redis.client() });
    expect((await tollgate.consume({ user: a, kind: 'geocoding', cost: 8 })).allowed).toBe(true);
    const overB = await tollgate.consume({ user: b, kind: 'geocoding', cost: 3 });
    expect(overB.reason).toBe('credits_exhausted');
    expect(overB.credits?.availableMillicredits).toBe(2 * PRICE);
    expect((await tollgate.consume({ user: b, kind: 'geocoding', cost: 2 })).allowed).toBe(true);
    expect(await balanceOf(org)).toBe('0');
  });

  it('a soft limit lifts the quota, never the credit budget', async () => {
    const org = await budgetedOrg({ balance: PRICE, quota: 0 });
    const user = await member(org);
    await redis.client().hset(`rails:users:${user}`, 'soft_geocoding_limit', 'true');
    const tollgate = new Tollgate({ redis: redis.client() });
    expect((await tollgate.consume({ user, kind: 'geocoding' })).allowed).toBe(true);
    expect((await tollgate.consume({ user, kind: 'geocoding' })).reason).toBe('credits_exhausted');
  });

  it('settling failed units refunds their credits to the org, the spent counter and the ledgers', async () => {
    const org = await budgetedOrg({ balance: 100 * PRICE });
    const user = await member(org, 50 * PRICE);
    const tollgate = new Tollgate({ redis: redis.client() });
    const admission = await tollgate.consume({ user, kind: 'geocoding', cost: 10 });
    expect(await ledgerOf('user', user)).toBe(10 * PRICE);
    await tollgate.settle(admission.reservation!, { success: 6, failed: 4 });
    expect(await balanceOf(org)).toBe(String(94 * PRICE));
    expect(await spentOf(user)).toBe(String(6 * PRICE));
    expect(await ledgerOf('user', user)).toBe(6 * PRICE);
    expect(await ledgerOf('org', org)).toBe(6 * PRICE);
    // A second settle is recognised and refunds nothing more.
    expect(await tollgate.settle(admission.reservation!, 'failed')).toEqual({ status: 'already_settled' });
    expect(await balanceOf(org)).toBe(String(94 * PRICE));
  });

  it('charges at the configured price per kind', async () => {
    const org = await budgetedOrg({ balance: 1_000_000 });
    await redis.client().hset(`rails:orgs:${org}`, 'here_isolines_quota', '100');
    const user = await member(org);
    const tollgate = new Tollgate({ redis: redis.client(), creditPrices: { isolines: 1234 } });
    const admission = await tollgate.consume({ user, kind: 'isolines', cost: 3 });
    expect(admission.credits?.costMillicredits).toBe(3 * 1234);
    expect(await balanceOf(org)).toBe(String(1_000_000 - 3 * 1234));
  });

  it('refuses a garbled balance with a typed error and writes nothing', async () => {
    const org = await budgetedOrg({ balance: 100 });
    await redis.client().hset(`rails:orgs:${org}`, 'credits_balance_millicredits', '12.5');
    const user = await member(org);
    const tollgate = new Tollgate({ redis: redis.client() });
    const before = await snapshot(redis.client(), [user, org]);
    await expect(tollgate.consume({ user, kind: 'geocoding' })).rejects.toMatchObject({ code: 'ERR_TOLLGATE_INVALID_CONFIG' });
    expect(await snapshot(redis.client(), [user, org])).toEqual(before);
  });

  it('rejects bad credit prices at construction', () => {
    expect(() => new Tollgate({ redis: redis.client(), creditPrices: { geocoding: -1 } })).toThrow(/creditPrices/);
    expect(() => new Tollgate({ redis: redis.client(), creditPrices: { geocoding: 0.5 } })).toThrow(/creditPrices/);
    expect(() => new Tollgate({ redis: redis.client(), creditPrices: { nope: 1 } as never })).toThrow(/creditPrices/);
  });
});

describe('credit races', () => {
  it('300 concurrent consumes against an allocation of 50 units admit exactly 50 and spend exactly 50 units of credits', async () => {
    const org = await budgetedOrg({ balance: 1_000_000 });
    const user = await member(org, 50 * PRICE);
    const clients = Array.from({ length: 4 }, () => new Tollgate({ redis: redis.url(), timeoutMs: 10_000 }));
    try {
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) => clients[i % clients.length]!.consume({ user, kind: 'geocoding' })),
      );
      const admitted = results.filter((r) => r.allowed);
      expect(admitted).toHaveLength(50);
      expect(results.filter((r) => r.reason === 'credits_exhausted')).toHaveLength(250);
      expect(await spentOf(user)).toBe(String(50 * PRICE));
      expect(await balanceOf(org)).toBe(String(1_000_000 - 50 * PRICE));
      expect(await ledgerOf('user', user)).toBe(50 * PRICE);
      const usage = await clients[0]!.usage({ user, kind: 'geocoding' });
      expect(usage.metrics.success_responses).toBe(50);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('members racing for one org balance never take it below zero', async () => {
    const org = await budgetedOrg({ balance: 60 * PRICE });
    const users = await Promise.all(Array.from({ length: 6 }, () => member(org, 30 * PRICE)));
    const clients = Array.from({ length: 3 }, () => new Tollgate({ redis: redis.url(), timeoutMs: 10_000 }));
    try {
      const results = await Promise.all(
        Array.from({ length: 240 }, (_, i) =>
          clients[i % clients.length]!.consume({ user: users[i % users.length]!, kind: 'geocoding', cost: 1 + (i % 2) }),
        ),
      );
      const admittedUnits = results.filter((r) => r.allowed).reduce((sum, r) => sum + r.cost, 0);
      const balance = Number(await balanceOf(org));
      expect(balance).toBeGreaterThanOrEqual(0);
      expect(admittedUnits * PRICE).toBe(60 * PRICE - balance);
      expect(await ledgerOf('org', org)).toBe(admittedUnits * PRICE);
      // With 1- and 2-unit requests left over, the balance ends below the price of 2 units.
      expect(balance).toBeLessThan(2 * PRICE);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});
