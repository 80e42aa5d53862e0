// The engine on a real 3-master/3-replica Redis Cluster with the cluster key layout: exact races for a user and for an org spread over every master, once-only settles, request ids, API keys, moves.
import { describe, expect, it, vi } from 'vitest';
import { AuthenticationError, ERROR_CODES, Tollgate, type Admission } from '../../src/index.js';
import { CLUSTER_LAYOUT } from '../../src/core/layout.js';
import { sha256 } from '../../src/core/api-keys.js';
import { writeJournalBatch } from '../../src/redis/journal-writeback.js';
import { useClusterTollgate } from '../helpers/redis-cluster.js';
import { clusterOperations } from '../helpers/cluster-operations.js';
import { RedisUnavailableError } from '../../src/index.js';
import { uniqueName } from '../helpers/fixtures.js';

const gate = useClusterTollgate({ timeoutMs: 15_000, reservationTtlMs: 60_000 });
const layout = CLUSTER_LAYOUT;

const API_KEY = 'cluster-test-key-0123456789';

/** A user in no org: its directory entry holds its config (cluster layout). */
async function lone(user: string, fields: Record<string, string>): Promise<void> {
  await gate.client.hset(layout.directoryKey(user), { api_key_sha256: sha256(API_KEY).toString('hex'), ...fields });
}

/** An org with members: the member hashes in the org's slot, the directory entries in each user's own. */
async function org(name: string, members: string[], fields: Record<string, string>): Promise<void> {
  await gate.client.hset(layout.orgConfigKey(name), fields);
  for (const member of members) {
    await gate.client.hset(layout.userConfigKey(member, name), { organization: name, api_key_sha256: sha256(API_KEY).toString('hex') });
    await gate.client.hset(layout.directoryKey(member), { organization: name });
  }
}

/** The node id of the master serving `key`'s slot. */
async function masterOf(key: string): Promise<string> {
  const slot = Number(await gate.client.cluster('KEYSLOT', key));
  const ranges = await gate.client.cluster('SLOTS');
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  return String(range?.[2]?.[2]);
}

/** Today's score of a usage key (the test runs on one day; a race spans milliseconds). */
async function total(key: string): Promise<number> {
  const flat = await gate.client.zrange(key, 0, '-1', 'WITHSCORES');
  let sum = 0;
  for (let i = 1; i < flat.length; i += 2) sum += Number(flat[i]);
  return sum;
}

function month(): string {
  const now = new Date();
  return `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

describe('the cluster layout on a Redis Cluster', () => {
  it('keeps every key of a decision in the pool\'s slot', async () => {
    const user = uniqueName('u');
    const orgName = uniqueName('o');
    await org(orgName, [user], { geocoding_quota: '10' });
    const admission = await gate.tollgate.consume({ user, kind: 'geocoding', apiKey: API_KEY, requestId: uniqueName('r') });
    expect(admission.allowed).toBe(true);
    const slot = await gate.client.cluster('KEYSLOT', `{org:${orgName}}`);
    const keys = [
      layout.orgConfigKey(orgName),
      layout.userConfigKey(user, orgName),
      layout.usageKey({ type: 'org', name: orgName }, orgName, 'geocoder_here', 'success_responses', month()),
      layout.usageKey({ type: 'user', name: user }, orgName, 'geocoder_here', 'success_responses', month()),
    ];
    for (const key of keys) expect(await gate.client.cluster('KEYSLOT', key)).toBe(slot);
    expect(await total(keys[2] as string)).toBe(1);
    expect(await total(keys[3] as string)).toBe(1);
  });

  it('admits exactly the quota of a user in no org: 1000 concurrent consumes against 100', async () => {
    const user = uniqueName('u');
    await lone(user, { geocoding_quota: '100' });
    const admissions = await Promise.all(Array.from({ length: 1000 }, () => gate.tollgate.consume({ user, kind: 'geocoding', apiKey: API_KEY })));
    expect(admissions.filter((a) => a.allowed)).toHaveLength(100);
    const key = layout.usageKey({ type: 'user', name: user }, null, 'geocoder_here', 'success_responses', month());
    expect(await total(key)).toBe(100);
    expect(await total(layout.usageKey({ type: 'user', name: user }, null, 'geocoder_here', 'total_requests', month()))).toBe(100);
  });

  it('admits exactly the pooled quota of an org of 10 whose directory entries sit on all three masters', async () => {
    const orgName = uniqueName('o');
    const members: string[] = [];
    const masters = new Set<string>();
    // Ten members whose directory entries cover every master, as real users do.
    while (members.length < 10 || masters.size < 3) {
      const user = uniqueName('m');
      const master = await masterOf(layout.directoryKey(user));
      if (members.length >= 10 && masters.has(master)) continue;
      if (members.length >= 10) members.shift();
      members.push(user);
      masters.clear();
      for (const member of members) masters.add(await masterOf(layout.directoryKey(member)));
    }
    expect(masters.size).toBe(3);
    await org(orgName, members, { geocoding_quota: '100' });
    const admissions = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => gate.tollgate.consume({ user: members[i % 10] as string, kind: 'geocoding', apiKey: API_KEY })),
    );
    const allowed = admissions.filter((a) => a.allowed);
    expect(allowed).toHaveLength(100);
    expect(await total(layout.usageKey({ type: 'org', name: orgName }, orgName, 'geocoder_here', 'success_responses', month()))).toBe(100);
    let own = 0;
    for (const member of members) {
      own += await total(layout.usageKey({ type: 'user', name: member }, orgName, 'geocoder_here', 'success_responses', month()));
    }
    expect(own).toBe(100);
    // Refunding every admission in one burst: settles are coalesced per pool, each applied once.
    const settled = await Promise.all(allowed.map((a) => gate.tollgate.settle((a as Admission & { allowed: true }).reservation, 'failed')));
    expect(settled.every((s) => s.status === 'settled')).toBe(true);
    const again = await Promise.all(allowed.map((a) => gate.tollgate.settle((a as Admission & { allowed: true }).reservation, 'failed')));
    expect(again.every((s) => s.status === 'already_settled')).toBe(true);
    expect(await total(layout.usageKey({ type: 'org', name: orgName }, orgName, 'geocoder_here', 'success_responses', month()))).toBe(0);
    expect(await total(layout.usageKey({ type: 'org', name: orgName }, orgName, 'geocoder_here', 'failed_responses', month()))).toBe(100);
  });

  it('settles of several pools in one burst each land in their own pool', async () => {
    const users = Array.from({ length: 6 }, () => uniqueName('u'));
    for (const user of users) await lone(user, { geocoding_quota: '10' });
    const admissions = await Promise.all(users.map((user) => gate.tollgate.consume({ user, kind: 'geocoding', cost: 3 })));
    await Promise.all(admissions.map((a) => gate.tollgate.settle((a as Admission & { allowed: true }).reservation, { success: 1, empty: 2 })));
    for (const user of users) {
      expect(await total(layout.usageKey({ type: 'user', name: user }, null, 'geocoder_here', 'success_responses', month()))).toBe(1);
      expect(await total(layout.usageKey({ type: 'user', name: user }, null, 'geocoder_here', 'empty_responses', month()))).toBe(2);
    }
  });

  it('counts a request id once, however many times it is sent at once', async () => {
    const user = uniqueName('u');
    await lone(user, { geocoding_quota: '100' });
    const requestId = uniqueName('r');
    const admissions = await Promise.all(Array.from({ length: 50 }, () => gate.tollgate.consume({ user, kind: 'geocoding', cost: 2, requestId })));
    expect(admissions.every((a) => a.allowed)).toBe(true);
    expect(admissions.filter((a) => !a.replayed)).toHaveLength(1);
    expect(new Set(admissions.map((a) => a.reservation?.id)).size).toBe(1);
    expect(await total(layout.usageKey({ type: 'user', name: user }, null, 'geocoder_here', 'success_responses', month()))).toBe(2);
    expect(await gate.client.exists(layout.requestIdKey(user, null, requestId))).toBe(1);
  });

  it('refuses a wrong API key for a member and for a user in no org, and a revoked key at once', async () => {
    const member = uniqueName('m');
    const orgName = uniqueName('o');
    await org(orgName, [member], { geocoding_quota: '10' });
    const user = uniqueName('u');
    await lone(user, { geocoding_quota: '10' });
    for (const who of [member, user, uniqueName('nobody')]) {
      await expect(gate.tollgate.consume({ user: who, kind: 'geocoding', apiKey: 'wrong' })).rejects.toBeInstanceOf(AuthenticationError);
    }
    expect((await gate.tollgate.consume({ user: member, kind: 'geocoding', apiKey: API_KEY })).allowed).toBe(true);
    await gate.client.hdel(layout.userConfigKey(member, orgName), 'api_key_sha256');
    await expect(gate.tollgate.consume({ user: member, kind: 'geocoding', apiKey: API_KEY })).rejects.toBeInstanceOf(AuthenticationError);
  });

  it('holds decisions while a user moves between pools, and decides in the new pool after', async () => {
    const user = uniqueName('u');
    const from = uniqueName('o');
    const to = uniqueName('o');
    await org(from, [user], { geocoding_quota: '10' });
    await gate.client.hset(layout.orgConfigKey(to), { geocoding_quota: '5' });
    expect((await gate.tollgate.consume({ user, kind: 'geocoding' })).org).toBe(from);
    // Step 1 of a move: freeze the old home; decisions wait instead of spending the old pool.
    await gate.client.hset(layout.userConfigKey(user, from), 'moving_to', `{org:${to}}`);
    const waiting = gate.tollgate.consume({ user, kind: 'geocoding' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    // Steps 2-4: the new home, the directory pointed at it, the old home gone.
    await gate.client.hset(layout.userConfigKey(user, to), { organization: to });
    await gate.client.hset(layout.directoryKey(user), 'organization', to);
    await gate.client.del(layout.userConfigKey(user, from));
    const admission = await waiting;
    expect(admission).toMatchObject({ allowed: true, org: to, quota: 5, used: 1 });
    expect(await total(layout.usageKey({ type: 'org', name: from }, from, 'geocoder_here', 'success_responses', month()))).toBe(1);
  });

  it('names the move as the fix when a user stays frozen', async () => {
    const user = uniqueName('u');
    await lone(user, { geocoding_quota: '10', moving_to: '{org:elsewhere}' });
    await expect(gate.tollgate.consume({ user, kind: 'geocoding' })).rejects.toMatchObject({
      code: ERROR_CODES.contention,
      message: expect.stringContaining('being moved'),
    });
  });

  it('refuses a directory entry naming an org without a member hash (a hand edit), writing nothing', async () => {
    const user = uniqueName('u');
    const orgName = uniqueName('o');
    await gate.client.hset(layout.orgConfigKey(orgName), { geocoding_quota: '10' });
    await gate.client.hset(layout.directoryKey(user), { organization: orgName });
    await expect(gate.tollgate.consume({ user, kind: 'geocoding' })).rejects.toMatchObject({ code: ERROR_CODES.invalidConfig });
    expect(await gate.client.exists(layout.usageKey({ type: 'org', name: orgName }, orgName, 'geocoder_here', 'total_requests', month()))).toBe(0);
  });

  it('reads quota and usage of members and orgs', async () => {
    const user = uniqueName('u');
    const orgName = uniqueName('o');
    await org(orgName, [user], { geocoding_quota: '10' });
    await gate.tollgate.consume({ user, kind: 'geocoding', cost: 4 });
    expect(await gate.tollgate.quota({ user, kind: 'geocoding' })).toMatchObject({ org: orgName, quota: 10, used: 4, remaining: 6 });
    expect((await gate.tollgate.usage({ user, kind: 'geocoding' })).used).toBe(4);
    expect((await gate.tollgate.usage({ org: orgName, kind: 'geocoding' })).used).toBe(4);
  });

  it('writes fail-open journal entries of several pools back in one batch, one script call per pool, each once', async () => {
    const users = Array.from({ length: 5 }, () => uniqueName('u'));
    const orgName = uniqueName('o');
    const writes = users.map((user, i) => {
      const org = i < 2 ? orgName : null;
      const markerId = uniqueName('e');
      return {
        markerId,
        markerKey: layout.journalMarkerKey(user, org, markerId),
        group: layout.poolTag(user, org),
        day: '07',
        increments: [{ key: layout.usageKey({ type: 'user', name: user }, org, 'geocoder_here', 'success_responses', '202611'), delta: i + 1 }],
      };
    });
    expect(await writeJournalBatch(gate.client, writes)).toEqual(writes.map(() => 'written'));
    expect(await writeJournalBatch(gate.client, writes)).toEqual(writes.map(() => 'already_written'));
    for (const [i, write] of writes.entries()) {
      expect(await gate.client.zscore(write.increments[0]!.key, '07')).toBe(String(i + 1));
    }
  });

  it('with waitForReplicas: 1, answers once the pool master\'s replica has the admission, and refunds it when the replica stays silent', async () => {
    const user = uniqueName('u');
    await lone(user, { geocoding_quota: '100' });
    const waiting = new Tollgate({ redis: gate.client, keyLayout: 'cluster', waitForReplicas: 1, timeoutMs: 800 });
    const operations = clusterOperations(gate.cluster());
    const key = layout.usageKey({ type: 'user', name: user }, null, 'geocoder_here', 'success_responses', month());
    try {
      expect((await waiting.consume({ user, kind: 'geocoding', cost: 2 })).allowed).toBe(true);
      expect(await total(key)).toBe(2);
      // WAIT went to the master that ran the script: its replica acknowledged. Now silence that replica.
      const master = await operations.masterOf(await operations.slotOf(key));
      // Its link seen up (a loaded machine can show it down for a moment).
      const replica = await vi.waitFor(
        async () => {
          const [found] = await operations.replicasOf(master);
          expect(found).toBeDefined();
          return found!;
        },
        { timeout: 10_000, interval: 100 },
      );
      process.kill(replica.pid, 'SIGSTOP');
      try {
        await expect(waiting.consume({ user, kind: 'geocoding', cost: 3 })).rejects.toBeInstanceOf(RedisUnavailableError);
      } finally {
        process.kill(replica.pid, 'SIGCONT');
      }
      // The unacknowledged admission is refunded once its deadline has passed.
      const deadline = Date.now() + 5000;
      while ((await total(key)) !== 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await total(key)).toBe(2);
    } finally {
      await waiting.close();
    }
  });

  it('reads usage exactly while the pool\'s slot is split between two masters (each counter follows its own redirection)', async () => {
    const user = uniqueName('u');
    await lone(user, { geocoding_quota: '1000' });
    // Several usage keys in the pool's slot, so a slot move migrating one key at a time leaves them split.
    await gate.tollgate.consume({ user, kind: 'geocoding', cost: 7 });
    const admission = await gate.tollgate.consume({ user, kind: 'geocoding', cost: 5 });
    await gate.tollgate.settle((admission as Admission & { allowed: true }).reservation, { success: 2, empty: 3 });
    const expected = await gate.tollgate.usage({ user, kind: 'geocoding' });
    expect(expected.used).toBe(12);
    const operations = clusterOperations(gate.cluster());
    const slot = await operations.slotOf(layout.directoryKey(user));
    const from = await operations.masterOf(slot);
    const to = (await operations.masters()).find((master) => master.port !== from.port)!;
    let reads = 0;
    let moving = true;
    const move = operations.moveSlot(slot, to, { keysPerMigrate: 1, pauseMs: 150, holdMs: 150 }).finally(() => {
      moving = false;
    });
    while (moving) {
      const seen = await gate.tollgate.usage({ user, kind: 'geocoding' });
      expect(seen.metrics).toEqual(expected.metrics);
      reads += 1;
    }
    expect((await move).keys).toBeGreaterThan(2);
    expect(reads).toBeGreaterThan(3);
  });

  it('a report refuses to start while a slot moves, and fails instead of answering short when one moved while it ran', async () => {
    const { planReport, reportRows } = await import('../../src/admin/reports.js');
    const user = uniqueName('u');
    await lone(user, { geocoding_quota: '1000' });
    await gate.tollgate.consume({ user, kind: 'geocoding', cost: 3 });
    const plan = planReport({ target: { user }, frame: 'today' }, Date.now());
    const drain = async (rows: AsyncIterable<unknown>): Promise<number> => {
      let count = 0;
      for await (const _row of rows) count += 1;
      return count;
    };
    // Nothing moving: the report answers.
    expect(await drain(reportRows(gate.client, plan, { layout }))).toBeGreaterThan(0);

    const operations = clusterOperations(gate.cluster());
    const slot = await operations.slotOf(layout.directoryKey(user));
    const from = await operations.masterOf(slot);
    const to = (await operations.masters()).find((master) => master.port !== from.port)!;
    // While the slot is split between two masters: refused before any row.
    let split = false;
    let moved = false;
    const move = operations.moveSlot(slot, to, { keysPerMigrate: 1, pauseMs: 100, holdMs: 500 }).finally(() => {
      moved = true;
    });
    while (!split && !moved) split = (await operations.ownersInNodes(slot)).some((owner) => owner.moving);
    expect(split).toBe(true);
    await expect(drain(reportRows(gate.client, plan, { layout }))).rejects.toMatchObject({ code: ERROR_CODES.concurrentChange });
    await move;

    // A slot that moves between the start and the end of the walk: the report fails at its end.
    const rows = reportRows(gate.client, plan, { layout })[Symbol.asyncIterator]();
    expect((await rows.next()).done).toBe(false);
    await operations.moveSlot(slot, from, { keysPerMigrate: 10, pauseMs: 0, holdMs: 0 });
    await expect(drain({ [Symbol.asyncIterator]: () => rows })).rejects.toMatchObject({ code: ERROR_CODES.concurrentChange });
  });
});
