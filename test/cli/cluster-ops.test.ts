// The operator's command on a real 3-master Redis Cluster with the cluster key layout: users, orgs, keys, credits, moves, lists, reports, repairs, deletes, read back by key name through a Cluster client.
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { CLUSTER_LAYOUT } from '../../src/core/layout.js';
import { useClusterTollgate } from '../helpers/redis-cluster.js';
import { uniqueName } from '../helpers/fixtures.js';
import { sink } from '../helpers/streams.js';
import { consumeLoad } from '../helpers/load.js';

const gate = useClusterTollgate({ configCacheMs: 0, maxAttempts: 30 });
const layout = CLUSTER_LAYOUT;

/** REDIS_CLUSTER only: the CLI picks the cluster layout by itself. */
const env = (): Record<string, string> => ({ REDIS_CLUSTER: gate.cluster().nodes.slice(0, 3).map((node) => node.address).join(',') });

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await runCli(args, { stdout: out.stream, stderr: err.stream, env: env() });
  return { code, out: out.text(), err: err.text() };
}

async function json<T = Record<string, any>>(...args: string[]): Promise<T> {
  const result = await cli('--json', ...args);
  expect([result.code, result.err]).toEqual([0, '']);
  return JSON.parse(result.out) as T;
}

function month(): string {
  const now = new Date();
  return `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

async function total(key: string): Promise<number> {
  const flat = await gate.client.zrange(key, 0, '-1', 'WITHSCORES');
  let sum = 0;
  for (let i = 1; i < flat.length; i += 2) sum += Number(flat[i]);
  return sum;
}

const own = (user: string, org: string | null): string => layout.usageKey({ type: 'user', name: user }, org, 'geocoder_here', 'success_responses', month());
const pool = (org: string): string => layout.usageKey({ type: 'org', name: org }, org, 'geocoder_here', 'success_responses', month());

/** A new user in a new org of 100 geocodes, made through the CLI. */
async function newMember(): Promise<{ user: string; org: string }> {
  const user = uniqueName('u');
  const org = uniqueName('o');
  await json('user', 'create', user);
  await json('org', 'create', org);
  await json('org', 'set-quota', org, 'geocoding', '100');
  await json('user', 'set-org', user, org);
  return { user, org };
}

describe('tollgate on a Redis Cluster (cluster key layout)', () => {
  it('creates and configures users and orgs under the documented key names', async () => {
    const user = uniqueName('u');
    const org = uniqueName('o');
    await json('user', 'create', user);
    await json('user', 'set-quota', user, 'geocoding', '100');
    await json('user', 'soft-limit', user, 'isolines', 'on');
    await json('user', 'set-provider', user, 'routing', 'tomtom');
    await json('user', 'set-period-end', user, '2026-01-15');
    await json('user', 'set-block-price', user, 'geocoding', '150');
    expect(await gate.client.hgetall(`rails:users:{user:${user}}`)).toMatchObject({
      geocoding_quota: '100',
      soft_here_isolines_limit: 'true',
      routing_provider: 'tomtom',
      period_end_date: '2026-01-15 00:00:00 UTC',
      geocoding_block_price: '150',
    });
    await json('org', 'create', org);
    await json('org', 'set-quota', org, 'geocoding', '500');
    expect(await gate.client.hgetall(`rails:orgs:{org:${org}}`)).toMatchObject({ geocoding_quota: '500', credits_enabled: 'false' });
    // Nothing was written under the CARTO names.
    expect([await gate.client.exists(`rails:users:${user}`), await gate.client.exists(`rails:orgs:${org}`)]).toEqual([0, 0]);

    const view = await json('user', 'show', user);
    expect(view).toMatchObject({ username: user, organization: null, geocoding: { quota: 100, block_price: 150, monthly_use: 0, hard_limit: true }, routing_provider: 'tomtom' });
  });

  it('joins, moves between and leaves orgs with the move protocol: decision fields, counters and the directory follow', async () => {
    const user = uniqueName('u');
    const a = uniqueName('a');
    const b = uniqueName('b');
    await json('user', 'create', user);
    await json('user', 'set-quota', user, 'geocoding', '30');
    const { apiKey } = await json<{ apiKey: string }>('user', 'create-key', user);
    for (const org of [a, b]) {
      await json('org', 'create', org);
      await json('org', 'set-quota', org, 'geocoding', '100');
    }
    expect((await gate.tollgate.consume({ user, kind: 'geocoding', cost: 4, apiKey })).allowed).toBe(true);

    await json('user', 'set-org', user, a);
    expect(await gate.client.hgetall(`rails:users:{user:${user}}`)).toEqual({ organization: a });
    expect(await gate.client.hgetall(`rails:orgs:{org:${a}}:member:${user}`)).toMatchObject({ organization: a, geocoding_quota: '30', 'api_key_sha256:main': expect.any(String) });
    expect(await gate.client.cluster('KEYSLOT', `rails:orgs:{org:${a}}:member:${user}`)).toBe(await gate.client.cluster('KEYSLOT', `{org:${a}}`));
    expect([await total(`user:{org:${a}}:${user}:geocoder_here:success_responses:${month()}`), await gate.client.exists(own(user, null))]).toEqual([4, 0]);
    expect((await gate.tollgate.consume({ user, kind: 'geocoding', cost: 6, apiKey })).allowed).toBe(true);
    expect(await total(`org:{org:${a}}:geocoder_here:success_responses:${month()}`)).toBe(6);
    const shown = await json('user', 'show', user);
    expect(shown).toMatchObject({ organization: a, geocoding: { quota: 100, monthly_use: 6 }, has_api_key: true });
    const orgView = await json('org', 'show', a);
    expect(orgView.members).toEqual([{ username: user, geocoding: 10, here_isolines: 0, mapzen_routing: 0 }]);

    await json('user', 'set-org', user, b);
    expect(await gate.client.hgetall(`rails:users:{user:${user}}`)).toEqual({ organization: b });
    expect(await gate.client.exists(`rails:orgs:{org:${a}}:member:${user}`)).toBe(0);
    expect([await total(own(user, b)), await total(own(user, a)), await total(pool(a))]).toEqual([10, 0, 6]);

    await json('user', 'leave-org', user);
    const directory = await gate.client.hgetall(`rails:users:{user:${user}}`);
    expect(directory.organization).toBeUndefined();
    expect(directory).toMatchObject({ geocoding_quota: '30', 'api_key_sha256:main': expect.any(String) });
    expect(await gate.client.exists(`rails:orgs:{org:${b}}:member:${user}`)).toBe(0);
    expect(await total(`user:{user:${user}}:geocoder_here:success_responses:${month()}`)).toBe(10);
    // Alone again: judged on its own counters, member use included; the key still works.
    await gate.tollgate.authenticate({ user, apiKey });
    expect((await json('user', 'show', user)).geocoding).toMatchObject({ quota: 30, monthly_use: 10 });
  });

  it('a member under concurrent load moves without double counting, and no pool passes its quota', async () => {
    const user = uniqueName('u');
    const a = uniqueName('a');
    const b = uniqueName('b');
    await json('user', 'create', user);
    for (const [org, quota] of [[a, 1000], [b, 10]] as const) {
      await json('org', 'create', org);
      await json('org', 'set-quota', org, 'geocoding', String(quota));
    }
    await json('user', 'set-org', user, a);
    const load = consumeLoad(gate.tollgate, user);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await json('user', 'set-org', user, b);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await json('user', 'set-org', user, a);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const admitted = await load.stop();
    const [poolA, poolB] = [await total(pool(a)), await total(pool(b))];
    expect(poolB).toBeLessThanOrEqual(10);
    expect(poolA).toBeLessThanOrEqual(1000);
    expect(Math.min(poolA, poolB)).toBeGreaterThan(0);
    expect(poolA + poolB).toBe(admitted);
    expect([await total(own(user, a)), await total(own(user, b))]).toEqual([admitted, 0]);
  });

  it('runs API keys, credits and allocations on the member hash in the org\'s slot', async () => {
    const user = uniqueName('u');
    const org = uniqueName('o');
    await json('user', 'create', user);
    await json('org', 'create', org);
    await json('credits', 'set', org, '100');
    await json('credits', 'enable', org);
    await json('credits', 'default-limit', org, '10');
    await json('user', 'set-org', user, org);
    const memberKey = `rails:orgs:{org:${org}}:member:${user}`;
    expect(await gate.client.hgetall(memberKey)).toMatchObject({ credits_allocation_millicredits: '10000', credits_spent_millicredits: '0' });
    expect(await json('credits', 'user', user)).toMatchObject({ organization: org, assignedCredits: 10, availableCredits: 10 });
    await json('credits', 'allocate', user, '25');
    expect(await gate.client.hget(memberKey, 'credits_allocation_millicredits')).toBe('25000');
    await json('credits', 'deallocate', user);
    expect(await gate.client.hget(memberKey, 'credits_allocation_millicredits')).toBeNull();

    const created = await json<{ apiKey: string }>('user', 'create-key', user, 'ci');
    expect(await gate.client.hget(memberKey, 'api_key_sha256:ci')).toMatch(/^[0-9a-f]{64}$/);
    expect(await gate.client.hget(`rails:users:{user:${user}}`, 'api_key_sha256:ci')).toBeNull();
    const keys = await json<Array<{ name: string; state: string }>>('user', 'keys', user);
    expect(keys.map((key) => [key.name, key.state])).toEqual([['ci', 'active']]);
    const rotated = await json<{ apiKey: string; previous: string }>('user', 'rotate-key', user, 'ci');
    await gate.tollgate.authenticate({ user, apiKey: rotated.apiKey });
    await gate.tollgate.authenticate({ user, apiKey: created.apiKey });
    await json('user', 'revoke-key', user, rotated.previous);
    await expect(gate.tollgate.authenticate({ user, apiKey: created.apiKey })).rejects.toMatchObject({ code: 'ERR_TOLLGATE_UNAUTHORIZED' });
  });

  it('lists users and orgs over every master, and pages across them', async () => {
    const prefix = uniqueName('l');
    const users = Array.from({ length: 12 }, (_, i) => `${prefix}-u${i}`);
    for (const user of users) await json('user', 'create', user);
    const org = `${prefix}-org`;
    await json('org', 'create', org);
    await json('user', 'set-org', users[0]!, org);
    // The users' directory entries sit on all three masters.
    const masters = await Promise.all(gate.client.nodes('master').map(async (node) => (await node.keys(`rails:users:{user:${prefix}-*`)).length));
    expect(masters.filter((count) => count > 0).length).toBeGreaterThan(1);
    const listed = (await cli('user', 'list', '--count', '3')).out.split('\n').filter((line) => line.startsWith(prefix));
    expect(listed.sort()).toEqual([...users].sort());
    // One page per run, each run its own client: the cursor names the same master every time.
    const paged: string[] = [];
    let cursor = '0';
    let pages = 0;
    do {
      const page = await json<{ names: string[]; cursor: string }>('user', 'list', '--cursor', cursor, '--count', '5');
      paged.push(...page.names.filter((listedName) => listedName.startsWith(prefix)));
      cursor = page.cursor;
      pages += 1;
    } while (cursor !== '0');
    expect(pages).toBeGreaterThan(2);
    expect(paged.sort()).toEqual([...users].sort());
    const orgs = (await cli('org', 'list')).out.split('\n');
    expect(orgs).toContain(org);
    // A member hash is not an org.
    expect(orgs.filter((line) => line.includes(':member:') || line.includes('{'))).toEqual([]);
  });

  it("reports a user's own use summed over its homes, and an org's pool and members from its slot", async () => {
    const user = uniqueName('u');
    const org = uniqueName('o');
    await json('user', 'create', user);
    await json('user', 'set-quota', user, 'geocoding', '100');
    await json('org', 'create', org);
    await json('org', 'set-quota', org, 'geocoding', '100');
    expect((await gate.tollgate.consume({ user, kind: 'geocoding', cost: 2 })).allowed).toBe(true);
    await json('user', 'set-org', user, org);
    expect((await gate.tollgate.consume({ user, kind: 'geocoding', cost: 3 })).allowed).toBe(true);
    // A counter left in the old home for this day (a late settle after the move): summed, not lost.
    await gate.client.zincrby(own(user, null), 1, String(new Date().getUTCDate()).padStart(2, '0'));
    const rows = await json<Array<{ scope: string; owner: string; metric: string; count: number; date: string }>>('report', '--user', user, '--frame', 'today', '--no-totals');
    expect(rows.filter((row) => row.metric === 'success_responses')).toEqual([expect.objectContaining({ scope: 'user', owner: user, count: 6 })]);
    const orgRows = await json<Array<{ scope: string; owner: string; metric: string; count: number }>>('report', '--org', org, '--frame', 'today', '--no-totals');
    const success = orgRows.filter((row) => row.metric === 'success_responses').map((row) => [row.scope, row.owner, row.count]);
    expect(success).toEqual([
      ['org', org, 3],
      ['user', user, 5],
    ]);
  });

  it('adjusts usage in the pool\'s slot and repairs garbled scores in every home', async () => {
    const { user, org } = await newMember();
    expect((await gate.tollgate.consume({ user, kind: 'geocoding', cost: 5 })).allowed).toBe(true);
    const adjustment = await json('user', 'adjust-usage', user, 'geocoding', '2', '--reason', 'outage');
    expect(adjustment.keys).toEqual([own(user, org), pool(org)]);
    expect([await total(own(user, org)), await total(pool(org))]).toEqual([3, 3]);
    expect(await gate.client.llen(`tollgate:adjustments:{org:${org}}:${user}`)).toBe(1);
    expect((await json<unknown[]>('user', 'adjustments', user)).length).toBe(1);

    await gate.client.zadd(own(user, null), '-4', '01');
    const found = await json('user', 'repair-usage', user);
    expect(found.found).toEqual([expect.objectContaining({ key: own(user, null), member: '01', score: '-4' })]);
    await json('user', 'repair-usage', user, '--apply');
    expect(await gate.client.zscore(own(user, null), '01')).toBeNull();
  });

  it('deletes a member (member hash and directory entry) and its usage in every home, then its org', async () => {
    const { user, org } = await newMember();
    expect((await gate.tollgate.consume({ user, kind: 'geocoding', cost: 1 })).allowed).toBe(true);
    await gate.client.zadd(own(user, null), '1', '01');
    const refused = await cli('org', 'delete', org);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('ERR_TOLLGATE_HAS_MEMBERS');
    const deleted = await json('user', 'delete', user, '--with-usage');
    const gone = [`rails:users:{user:${user}}`, `rails:orgs:{org:${org}}:member:${user}`, own(user, null), own(user, org)];
    expect(deleted.usageKeys).toBeGreaterThanOrEqual(2);
    expect(await Promise.all(gone.map((key) => gate.client.exists(key)))).toEqual([0, 0, 0, 0]);
    expect(await total(pool(org))).toBe(1);
    await json('org', 'delete', org, '--with-usage');
    expect([await gate.client.exists(`rails:orgs:{org:${org}}`), await gate.client.exists(pool(org))]).toEqual([0, 0]);
  });
});
