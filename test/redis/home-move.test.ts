// The cluster layout's move protocol (join, leave, change org) on one Redis: keys after each move, a move killed half-way finished by a re-run, decisions during a move, a move under load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { AdminOperations } from '../../src/admin/operations.js';
import { CLUSTER_LAYOUT } from '../../src/core/layout.js';
import { moveHome, type HomeFields } from '../../src/redis/home-move.js';
import { useTestRedis } from '../helpers/redis.js';
import { useNames } from '../helpers/fixtures.js';
import { consumeLoad } from '../helpers/load.js';

const redis = useTestRedis();
const name = useNames(() => redis.client());
const layout = CLUSTER_LAYOUT;
let tollgate: Tollgate;
let ops: AdminOperations;

beforeAll(() => {
  tollgate = new Tollgate({ redis: redis.client(), keyLayout: 'cluster', configCacheMs: 0, maxAttempts: 30 });
  ops = new AdminOperations(tollgate);
});
afterAll(() => tollgate.close());

function month(): string {
  const now = new Date();
  return `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

async function total(key: string): Promise<number> {
  const flat = await redis.client().zrange(key, 0, '-1', 'WITHSCORES');
  let sum = 0;
  for (let i = 1; i < flat.length; i += 2) sum += Number(flat[i]);
  return sum;
}

const own = (user: string, org: string | null): string => layout.usageKey({ type: 'user', name: user }, org, 'geocoder_here', 'success_responses', month());
const pool = (org: string): string => layout.usageKey({ type: 'org', name: org }, org, 'geocoder_here', 'success_responses', month());

/** What `tollgate user set-org` writes for a join (the fields moveHome is given by the operations). */
const joinFields = (org: string | null) => (): HomeFields => ({
  drop: ['credits_allocation_millicredits', 'credits_spent_millicredits'],
  set: org === null ? {} : { organization: org, credits_spent_millicredits: '0' },
});

describe('moving a user between pools (cluster layout, one Redis)', () => {
  it('joins, changes and leaves orgs: decision fields, own counters and request ids follow, old homes go', async () => {
    const client = redis.client();
    const user = name('u');
    const a = name('a');
    const b = name('b');
    await ops.create({ user });
    await ops.setQuota({ user }, 'geocoding', 50);
    const key = await ops.createApiKey(user);
    await ops.create({ org: a });
    await ops.setQuota({ org: a }, 'geocoding', 100);
    await ops.create({ org: b });
    await ops.setQuota({ org: b }, 'geocoding', 100);
    const rid = name('r');
    expect((await tollgate.consume({ user, kind: 'geocoding', cost: 3, requestId: rid })).allowed).toBe(true);
    expect(await total(own(user, null))).toBe(3);

    await ops.setOrganization(user, a);
    expect(await client.hgetall(layout.directoryKey(user))).toEqual({ organization: a });
    const member = await client.hgetall(layout.userConfigKey(user, a));
    expect(member).toMatchObject({ organization: a, geocoding_quota: '50', 'api_key_sha256:main': expect.any(String) });
    expect(member.moving_to).toBeUndefined();
    expect(member.moved_from).toMatch(new RegExp(`^\\{user:${user}\\}\\|\\d{6}-[0-9a-f]{12}$`));
    // Own counters moved (not copied): in the new home once, gone from the old one.
    expect(await total(own(user, a))).toBe(3);
    expect(await client.exists(own(user, null))).toBe(0);
    expect(await client.exists(layout.requestIdKey(user, a, rid))).toBe(1);
    expect(await client.pttl(layout.requestIdKey(user, a, rid))).toBeGreaterThan(0);
    // The replay of the request id in the new pool is answered from the carried id, not counted again.
    expect((await tollgate.consume({ user, kind: 'geocoding', cost: 3, requestId: rid })).allowed).toBe(true);
    expect(await total(pool(a))).toBe(0);
    expect((await tollgate.consume({ user, kind: 'geocoding', cost: 2, apiKey: key.apiKey })).allowed).toBe(true);
    expect([await total(pool(a)), await total(own(user, a))]).toEqual([2, 5]);

    await ops.setOrganization(user, b);
    expect(await client.hgetall(layout.directoryKey(user))).toEqual({ organization: b });
    expect(await client.exists(layout.userConfigKey(user, a))).toBe(0);
    expect(await client.hget(layout.userConfigKey(user, b), 'organization')).toBe(b);
    expect([await total(pool(a)), await total(own(user, a)), await total(own(user, b)), await total(pool(b))]).toEqual([2, 0, 5, 0]);

    await ops.setOrganization(user, null);
    const directory = await client.hgetall(layout.directoryKey(user));
    expect(directory.organization).toBeUndefined();
    expect(directory).toMatchObject({ geocoding_quota: '50', 'api_key_sha256:main': expect.any(String) });
    expect(await client.exists(layout.userConfigKey(user, b))).toBe(0);
    // Alone again, the user is judged on its own counters, member use included (CARTO's rule), counted once.
    expect(await total(own(user, null))).toBe(5);
    const quota = await tollgate.quota({ user, kind: 'geocoding' });
    expect([quota.org, quota.used, quota.quota]).toEqual([null, 5, 50]);
    await tollgate.authenticate({ user, apiKey: key.apiKey });
  });

  it('a move killed after step 1 or 2 is finished by running it again, counting nothing twice', async () => {
    const client = redis.client();
    for (const stopAfter of [1, 2, 3]) {
      const user = name('u');
      const a = name('a');
      await ops.create({ user });
      await ops.setQuota({ user }, 'geocoding', 50);
      await ops.create({ org: a });
      await ops.setQuota({ org: a }, 'geocoding', 100);
      expect((await tollgate.consume({ user, kind: 'geocoding', cost: 4 })).allowed).toBe(true);

      await moveHome(client, layout, user, a, joinFields(a), Date.now(), stopAfter);
      expect(await client.hget(layout.directoryKey(user), 'moving_to')).toBe(`{org:${a}}`);
      // Frozen: a change to the moving user is refused, naming the fix.
      await expect(ops.setQuota({ user }, 'geocoding', 60)).rejects.toMatchObject({ code: 'ERR_TOLLGATE_CONCURRENT_CHANGE' });
      // Moving elsewhere is refused until this move is finished.
      await expect(ops.setOrganization(user, null)).rejects.toMatchObject({ code: 'ERR_TOLLGATE_CONCURRENT_CHANGE' });
      await ops.setOrganization(user, a);
      await ops.setOrganization(user, a);
      expect(await client.hgetall(layout.directoryKey(user))).toEqual({ organization: a });
      expect(await client.hget(layout.userConfigKey(user, a), 'geocoding_quota')).toBe('50');
      expect([await total(own(user, a)), await client.exists(own(user, null))]).toEqual([4, 0]);
      expect((await tollgate.consume({ user, kind: 'geocoding', cost: 1 })).allowed).toBe(true);
      expect(await total(pool(a))).toBe(1);
    }
  });

  it('a member leaving, killed after step 2 (directory already lone), is finished by leave-org again', async () => {
    const client = redis.client();
    const user = name('u');
    const a = name('a');
    await ops.create({ user });
    await ops.create({ org: a });
    await ops.setQuota({ org: a }, 'geocoding', 100);
    await ops.setOrganization(user, a);
    expect((await tollgate.consume({ user, kind: 'geocoding', cost: 7 })).allowed).toBe(true);
    await moveHome(client, layout, user, null, joinFields(null), Date.now(), 2);
    expect((await client.hgetall(layout.directoryKey(user))).organization).toBeUndefined();
    expect(await client.hget(layout.userConfigKey(user, a), 'moving_to')).toBe(`{user:${user}}`);
    await ops.setOrganization(user, null);
    expect(await client.exists(layout.userConfigKey(user, a))).toBe(0);
    expect([await total(own(user, null)), await client.exists(own(user, a)), await total(pool(a))]).toEqual([7, 0, 7]);
  });

  it('repairs an organization set by hand on a directory entry: set-org moves the fields, leave-org drops the field', async () => {
    const client = redis.client();
    const [joiner, stayer] = [name('u'), name('u')];
    const a = name('a');
    await ops.create({ org: a });
    await ops.setQuota({ org: a }, 'geocoding', 100);
    for (const user of [joiner, stayer]) {
      await ops.create({ user });
      await ops.setQuota({ user }, 'geocoding', 20);
      expect((await tollgate.consume({ user, kind: 'geocoding', cost: 2 })).allowed).toBe(true);
      await client.hset(layout.directoryKey(user), 'organization', a); // the edit that skips the protocol
      await expect(tollgate.consume({ user, kind: 'geocoding' })).rejects.toMatchObject({ code: 'ERR_TOLLGATE_INVALID_CONFIG' });
      await expect(ops.showUser(user)).rejects.toMatchObject({ code: 'ERR_TOLLGATE_INVALID_CONFIG', message: expect.stringContaining('set-org') });
    }
    await ops.setOrganization(joiner, a);
    expect(await client.hgetall(layout.directoryKey(joiner))).toEqual({ organization: a });
    expect(await client.hget(layout.userConfigKey(joiner, a), 'geocoding_quota')).toBe('20');
    expect([await total(own(joiner, a)), await client.exists(own(joiner, null))]).toEqual([2, 0]);
    expect((await tollgate.consume({ user: joiner, kind: 'geocoding' })).allowed).toBe(true);

    await ops.setOrganization(stayer, null);
    const directory = await client.hgetall(layout.directoryKey(stayer));
    expect(directory.organization).toBeUndefined();
    expect(directory.geocoding_quota).toBe('20');
    expect((await tollgate.quota({ user: stayer, kind: 'geocoding' })).used).toBe(2);
  });

  it('a refund settled after the move lands in the old pool; a report of the user still adds up', async () => {
    const client = redis.client();
    const user = name('u');
    const a = name('a');
    const b = name('b');
    await ops.create({ user });
    for (const org of [a, b]) {
      await ops.create({ org });
      await ops.setQuota({ org }, 'geocoding', 100);
    }
    await ops.setOrganization(user, a);
    const admission = await tollgate.consume({ user, kind: 'geocoding', cost: 3 });
    expect(admission.allowed).toBe(true);
    await ops.setOrganization(user, b);
    await tollgate.settle((admission as typeof admission & { allowed: true }).reservation, 'failed');
    // The pool it was admitted in gets its units back; the user's carried count keeps them (overstated, never under).
    expect([await total(pool(a)), await total(own(user, b))]).toEqual([0, 3]);
    expect(await total(own(user, a))).toBe(-3);
    const { planReport, reportRows, sortedRows } = await import('../../src/admin/reports.js');
    const rows = [];
    for await (const row of sortedRows(reportRows(client, planReport({ target: { user }, frame: 'today' }, Date.now()), { layout }))) rows.push(row);
    expect(rows.filter((row) => row.metric === 'success_responses' || row.metric === 'used')).toEqual([]);
    expect(rows.find((row) => row.metric === 'failed_responses')?.count).toBe(3);
  });

  it('a decision that meets a frozen home waits and is decided in the new pool once the move is done', async () => {
    const client = redis.client();
    const user = name('u');
    const a = name('a');
    await ops.create({ user });
    await ops.setQuota({ user }, 'geocoding', 50);
    await ops.create({ org: a });
    await ops.setQuota({ org: a }, 'geocoding', 100);
    await moveHome(client, layout, user, a, joinFields(a), Date.now(), 1);
    const waiting = tollgate.consume({ user, kind: 'geocoding', cost: 2 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await client.exists(own(user, null), own(user, a))).toBe(0);
    await ops.setOrganization(user, a);
    const admission = await waiting;
    expect(admission.allowed).toBe(true);
    expect([await total(pool(a)), await total(own(user, a))]).toEqual([2, 2]);
  });

  it('a move under concurrent consumes counts every admission once and passes no pool quota', async () => {
    const user = name('u');
    const a = name('a');
    const b = name('b');
    await ops.create({ user });
    // b's pool is small: the load that follows the user there runs into its quota.
    for (const [org, quota] of [[a, 400], [b, 10]] as const) {
      await ops.create({ org });
      await ops.setQuota({ org }, 'geocoding', quota);
    }
    await ops.setOrganization(user, a);
    const load = consumeLoad(tollgate, user);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await ops.setOrganization(user, b);
    await new Promise((resolve) => setTimeout(resolve, 80));
    await ops.setOrganization(user, a);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const admitted = await load.stop();
    const [poolA, poolB] = [await total(pool(a)), await total(pool(b))];
    expect(poolA).toBeLessThanOrEqual(400);
    expect(poolB).toBeLessThanOrEqual(10);
    expect(poolA).toBeGreaterThan(0);
    expect(poolB).toBeGreaterThan(0);
    expect(poolA + poolB).toBe(admitted);
    // The user's own counters moved with it twice and hold each admission once.
    expect([await total(own(user, a)), await total(own(user, b))]).toEqual([admitted, 0]);
  });
});
