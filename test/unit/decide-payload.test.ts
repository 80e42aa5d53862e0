// decide.lua's one payload: the cached plan's object closed by each call's fields. cjson keeps the
// later of two equal names, so the halves must not share one, and both must arrive whole.
import { describe, expect, it } from 'vitest';
import { planCredits, planDecision } from '../../src/core/accounting.js';
import { CREDIT_FIELDS, resolveAccount, resolveCreditBudget, type AccountSource } from '../../src/core/config.js';
import { compileDecidePlan, decidePayload, fingerprintDigest, type DecideCall } from '../../src/redis/scripts.js';

const source: AccountSource = {
  user: 'bob',
  userKey: 'rails:users:bob',
  userHash: { organization: 'acme', map_key: 'secret-key-of-bob' },
  org: 'acme',
  orgKey: 'rails:orgs:acme',
  orgHash: {
    geocoding_quota: '10',
    period_end_date: '2016-10-21 00:00:00 UTC',
    [CREDIT_FIELDS.enabled]: 'true',
    [CREDIT_FIELDS.balance]: '5000',
  },
};

/** An org member with credits on, the fullest plan there is. */
function compiled() {
  const account = resolveAccount(source, 'geocoding');
  const plan = planDecision(account, Date.parse('2017-03-20T10:00:00Z'));
  const credits = planCredits(account, resolveCreditBudget(source), 500, plan.yyyymm);
  return { plan, compiled: compileDecidePlan(account, plan, credits) };
}

/** A consume with every optional field set, a request id included. */
const call: DecideCall = {
  mode: 'consume',
  cost: 3,
  nowMs: 1_489_999_000_000,
  deadlineMs: 1_490_000_000_000,
  bucketKey: 'tollgate:rsv:x.y.0',
  field: '7',
  pendingValue: 'p3:abcdefghij',
  expireAtMs: 1_490_000_300_000,
  requestId: { key: 'tollgate:request:bob:r1', ttlMs: 86_400_000, signature: 'sig', match: 'geocoding|1477008000000|3' },
};

describe('the decide payload', () => {
  it('carries the plan and the call whole, under names they do not share', () => {
    const { compiled: plan } = compiled();
    const planNames = Object.keys(JSON.parse(`${plan.head}}`) as object);
    // The call's half alone: closed onto a plan of one placeholder name.
    const callHalf = JSON.parse(decidePayload({ ...plan, head: '{"placeholder":0' }, call)) as Record<string, unknown>;
    const callNames = Object.keys(callHalf).filter((name) => name !== 'placeholder');
    expect(planNames).toEqual(expect.arrayContaining(['cfg', 'rd', 'ch', 'day', 'ds', 'de', 'q', 'soft', 'cr']));
    expect(callNames).toEqual(['mode', 'cost', 'now', 'dl', 'f', 'val', 'exp', 'rid', 'ridTtl', 'sig', 'match']);
    expect(planNames.filter((name) => callNames.includes(name))).toEqual([]);
    const merged = JSON.parse(decidePayload(plan, call)) as Record<string, unknown>;
    expect(Object.keys(merged)).toEqual([...planNames, ...callNames]);
    expect(merged).toMatchObject({ mode: 'consume', cost: 3, f: '7', val: 'p3:abcdefghij', rid: true, day: '20' });
  });

  it('names every key once and refers to keys by their place', () => {
    const { plan, compiled: compiledPlan } = compiled();
    expect(new Set(compiledPlan.keys).size).toBe(compiledPlan.keys.length);
    const payload = JSON.parse(`${compiledPlan.head}}`) as { rd: number[][]; ch: number[][] };
    expect(payload.rd.map(([at]) => compiledPlan.keys[at! - 1])).toEqual(plan.reads.map((read) => read.key));
    expect(payload.ch.map(([at]) => compiledPlan.keys[at! - 1])).toEqual(plan.charges.map((charge) => charge.key));
  });

  it('holds config lengths and a digest, never a config value such as an API key', () => {
    const { compiled: plan } = compiled();
    expect(decidePayload(plan, call)).not.toContain('secret-key-of-bob');
    const cfg = (JSON.parse(`${plan.head}}`) as { cfg: Array<{ f: string[]; l: number[]; d: string }> }).cfg;
    const user = cfg.find((part) => part.f.includes('map_key'));
    expect(user?.l[user.f.indexOf('map_key')]).toBe('secret-key-of-bob'.length);
    const values = user!.f.map((field) => source.userHash[field] ?? null);
    expect(user?.d).toBe(fingerprintDigest(values));
  });
});
