// Property-based: arbitrary inputs to check/consume/settle/checkBulk/quota answer a valid result or a typed error, and a rejection writes nothing.
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, QUOTA_KINDS, Tollgate, TollgateError, type Decision, type Reservation } from '../../src/index.js';
import { snapshot, uniqueName, writeOrg, writeUser } from '../helpers/fixtures.js';
import { keyspaceChanges } from '../helpers/keyspace.js';
import { startRedisServer, type TestRedis } from '../helpers/redis-server.js';

const RUNS = 1000;
const CODES = new Set<string>(Object.values(ERROR_CODES));
const REASONS = new Set(['within_quota', 'soft_limit', 'quota_exceeded', 'no_quota', 'credits_exhausted']);

let server: TestRedis;
let admin: Redis;
let tollgate: Tollgate;
// Users with every kind of config: hard quota, soft limit, no quota, an org member, one without a hash.
const org = uniqueName('po');
const users = { hard: uniqueName('ph'), soft: uniqueName('ps'), none: uniqueName('pn'), member: uniqueName('pm'), ghost: uniqueName('pg') };
const HARD_QUOTA = 40;
// Reservations handed out so far, to settle (and to tamper with).
const reservations: Reservation[] = [];

beforeAll(async () => {
  // A private server without save points: its change counter only grows (see keyspaceChanges).
  server = await startRedisServer();
  admin = new Redis(server.url);
  tollgate = new Tollgate({ redis: server.url, configCacheMs: 0 });
  await writeOrg(admin, org, { geocoding_quota: '30', here_isolines_quota: '20', mapzen_routing_quota: '10', geocoder_provider: 'geonames' });
  await writeUser(admin, users.hard, { geocoding_quota: String(HARD_QUOTA), here_isolines_quota: '15', mapzen_routing_quota: '5' });
  await writeUser(admin, users.soft, { geocoding_quota: '5', soft_geocoding_limit: 'true', soft_here_isolines_limit: 'TRUE' });
  await writeUser(admin, users.none, {});
  await writeUser(admin, users.member, { organization: org });
});
afterAll(async () => {
  await tollgate?.close();
  admin?.disconnect();
  await server?.stop();
});

/** Anything at all, weighted towards what a confused caller would pass. */
const anything = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(null, undefined, true, false, Number.NaN, Infinity, -Infinity, 2 ** 53, 1e300),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.object({ maxDepth: 1 }),
);

const userArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Object.values(users)) },
  { weight: 1, arbitrary: fc.constantFrom('', 'a:b', 'a*', 'x'.repeat(129), ' lead', 'tab\there', 'nul\u0000', 'emoji-🙂', 'zero\u200bwidth', '{tag}') },
  { weight: 2, arbitrary: anything },
);
const kindArb = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...QUOTA_KINDS) }, { weight: 1, arbitrary: anything });
const costArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, 1e15, 1e15 + 1, 1e16, '3', undefined) },
  { weight: 1, arbitrary: anything },
);
const requestIdArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.stringMatching(/^r-[a-z0-9]{1,4}$/) },
  { weight: 1, arbitrary: anything },
);
const outcomeArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('success', 'empty', 'failed') },
  { weight: 2, arbitrary: fc.record({ success: fc.integer({ min: -2, max: 12 }), empty: fc.integer({ min: -2, max: 12 }) }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.record({ success: anything, failed: anything, extra: anything }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: anything },
);
/** A reservation: a real one, a real one with a field changed, or anything. */
const reservationArb = fc.oneof(
  { weight: 3, arbitrary: fc.nat().map((i) => ({ real: i, tamper: null as null | [string, unknown] })) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.nat(), fc.constantFrom('id', 'user', 'org', 'kind', 'serviceType', 'yyyymm', 'day', 'cost'), anything).map(([i, field, value]) => ({
      real: i,
      tamper: [field, value] as [string, unknown],
    })),
  },
  { weight: 1, arbitrary: anything.map((value) => ({ real: null, tamper: null, value })) },
);

type Operation =
  | { op: 'check'; user: unknown; kind: unknown; cost: unknown }
  | { op: 'consume'; user: unknown; kind: unknown; cost: unknown; requestId: unknown }
  | { op: 'settle'; reservation: { real: number | null; tamper: [string, unknown] | null; value?: unknown }; outcome: unknown }
  | { op: 'checkBulk'; user: unknown; kind: unknown; cost: unknown }
  | { op: 'quota'; user: unknown; kind: unknown };

const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constant('check' as const), user: userArb, kind: kindArb, cost: costArb }),
  fc.record({ op: fc.constant('consume' as const), user: userArb, kind: kindArb, cost: costArb, requestId: requestIdArb }),
  fc.record({ op: fc.constant('consume' as const), user: userArb, kind: kindArb, cost: costArb, requestId: requestIdArb }),
  fc.record({ op: fc.constant('settle' as const), reservation: reservationArb, outcome: outcomeArb }),
  fc.record({ op: fc.constant('checkBulk' as const), user: userArb, kind: kindArb, cost: costArb }),
  fc.record({ op: fc.constant('quota' as const), user: userArb, kind: kindArb }),
);

function pickReservation(spec: { real: number | null; tamper: [string, unknown] | null; value?: unknown }): unknown {
  if (spec.real === null || reservations.length === 0) return spec.value ?? null;
  const real = reservations[spec.real % reservations.length] as Reservation;
  return spec.tamper === null ? real : { ...real, [spec.tamper[0]]: spec.tamper[1] };
}

function expectDecision(decision: Decision): void {
  expect(typeof decision.allowed).toBe('boolean');
  expect(REASONS.has(decision.reason)).toBe(true);
  for (const n of [decision.quota, decision.used, decision.remaining, decision.cost]) {
    expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
  }
  expect(decision.remaining).toBe(Math.max(0, decision.quota - decision.used));
  expect(decision.resetsAt.getTime()).toBeGreaterThan(decision.cycleStart.getTime());
}

/** Runs one operation; answers whether it may have written (an admission or a settlement that applied). */
async function run(operation: Operation): Promise<boolean> {
  const call = tollgate as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  switch (operation.op) {
    case 'check': {
      expectDecision((await call.check!({ user: operation.user, kind: operation.kind, cost: operation.cost })) as Decision);
      return false;
    }
    case 'consume': {
      const request: Record<string, unknown> = { user: operation.user, kind: operation.kind, cost: operation.cost };
      // Pool ids repeat: retries of the same request, and reuses for another kind or cost (refused, typed).
      if (operation.requestId !== undefined) request.requestId = operation.requestId;
      const admission = (await call.consume!(request)) as Decision & { reservation: Reservation | null; replayed: boolean };
      expectDecision(admission);
      if (!admission.softLimit && admission.allowed) expect(admission.used).toBeLessThanOrEqual(admission.quota);
      if (admission.allowed) {
        expect(admission.reservation).toMatchObject({ user: admission.user, kind: admission.kind });
        if (!admission.replayed) reservations.push(admission.reservation as Reservation);
      } else {
        expect(admission.reservation).toBeNull();
      }
      return admission.allowed;
    }
    case 'settle': {
      const result = (await call.settle!(pickReservation(operation.reservation), operation.outcome)) as { status: string };
      expect(['settled', 'already_settled']).toContain(result.status);
      return result.status === 'settled';
    }
    case 'checkBulk': {
      const bulk = (await call.checkBulk!({ user: operation.user, kind: operation.kind, cost: operation.cost })) as { decision: Decision; admissible: number };
      expectDecision(bulk.decision);
      const asked = operation.cost === undefined ? 1 : (operation.cost as number);
      expect(Number.isSafeInteger(bulk.admissible) && bulk.admissible >= 0 && bulk.admissible <= asked).toBe(true);
      return false;
    }
    case 'quota': {
      const info = (await call.quota!({ user: operation.user, kind: operation.kind })) as { quota: number; used: number; remaining: number };
      expect(info.remaining).toBe(Math.max(0, info.quota - info.used));
      return false;
    }
  }
}

describe('the library under arbitrary input', () => {
  it(`${RUNS} generated calls: a valid answer or a typed error, never a crash; rejections and reads write nothing`, async () => {
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(operationArb, async (operation) => {
        const before = await keyspaceChanges(admin);
        let wrote = false;
        try {
          wrote = await run(operation);
        } catch (error) {
          if (!(error instanceof TollgateError)) throw error;
          expect(CODES.has(error.code)).toBe(true);
          rejected += 1;
        }
        // Reads, refusals and errors leave every key as it was; only admissions and applied settlements write.
        if (!wrote) expect(await keyspaceChanges(admin)).toBe(before);
      }),
      { numRuns: RUNS },
    );
    // The run exercised both sides.
    expect(rejected).toBeGreaterThan(RUNS / 10);
    expect(reservations.length).toBeGreaterThan(20);
    // However it was hammered, the hard-limited user never went past its quota.
    for (const kind of QUOTA_KINDS) {
      const info = await tollgate.quota({ user: users.hard, kind });
      expect(info.used).toBeLessThanOrEqual(info.quota);
    }
  });

  it('a rejected call leaves the snapshot of the names it touched as it was', async () => {
    // The change counter above covers every key; this spells it out with the fixtures' snapshot for a sample.
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.values(users)), costArb.filter((c) => c !== undefined && !(Number.isSafeInteger(c) && (c as number) >= 1 && (c as number) <= 1e15)), async (user, cost) => {
        const before = await snapshot(admin, [user]);
        await expect(tollgate.consume({ user, kind: 'geocoding', cost: cost as number })).rejects.toMatchObject({ code: 'ERR_TOLLGATE_INVALID_COST' });
        expect(await snapshot(admin, [user])).toEqual(before);
      }),
      { numRuns: 50 },
    );
  });
});
