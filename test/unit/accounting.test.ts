// Pure accounting: cost checks, outcome splits, settlement increments and reservation round trips.
import { describe, expect, it } from 'vitest';
import {
  assertCost,
  assertReservation,
  breakdownOf,
  admissionIncrements,
  planDecision,
  reservationFromSignature,
  reservationSignature,
  settlementIncrements,
  type Reservation,
} from '../../src/core/accounting.js';
import { resolveAccount } from '../../src/core/config.js';
import { ERROR_CODES, InvalidInputError } from '../../src/core/errors.js';

const geocode: Reservation = {
  id: 'kxyz12.abc123d.0.1f',
  user: 'bob',
  org: 'acme',
  kind: 'geocoding',
  serviceType: 'geocoder_here',
  yyyymm: '202611',
  day: '22',
  cost: 10,
};

describe('assertCost', () => {
  it.each([0, -1, 1.5, NaN, Infinity, 1e9 + 1, 1e15, 1e16, '3', null, undefined])('rejects %j', (cost) => {
    expect(() => assertCost(cost)).toThrow(expect.objectContaining({ code: ERROR_CODES.invalidCost }));
  });

  it('accepts positive integers', () => {
    expect(assertCost(1)).toBe(1);
    expect(assertCost(1e9)).toBe(1e9);
  });
});

describe('breakdownOf', () => {
  it('puts every unit under a one-word outcome', () => {
    expect(breakdownOf('success', 4)).toEqual({ success: 4, empty: 0, failed: 0 });
    expect(breakdownOf('empty', 4)).toEqual({ success: 0, empty: 4, failed: 0 });
    expect(breakdownOf('failed', 4)).toEqual({ success: 0, empty: 0, failed: 4 });
  });

  it('accepts a split that adds up to the cost', () => {
    expect(breakdownOf({ success: 7, empty: 2, failed: 1 }, 10)).toEqual({ success: 7, empty: 2, failed: 1 });
    expect(breakdownOf({ empty: 10 }, 10)).toEqual({ success: 0, empty: 10, failed: 0 });
  });

  it.each([
    [{ success: 5 }, 'too few'],
    [{ success: 11 }, 'too many'],
    [{ success: -1, empty: 11 }, 'negative'],
    [{ success: 9.5, empty: 0.5 }, 'fractions'],
    [{ success: 10, refunded: 0 }, 'unknown part'],
    ['ok', 'unknown word'],
    [null, 'null'],
  ])('rejects %j (%s)', (outcome, _why) => {
    expect(() => breakdownOf(outcome as never, 10)).toThrow(expect.objectContaining({ code: ERROR_CODES.invalidOutcome }));
  });
});

describe('settlementIncrements', () => {
  it('leaves a successful geocode charged: nothing to move', () => {
    expect(settlementIncrements(geocode, breakdownOf('success', 10))).toEqual([]);
  });

  it('moves empty units to empty_responses and refunds failed ones, for user and org', () => {
    expect(settlementIncrements(geocode, { success: 7, empty: 2, failed: 1 })).toEqual([
      { key: 'user:bob:geocoder_here:success_responses:202611', delta: -3 },
      { key: 'user:bob:geocoder_here:empty_responses:202611', delta: 2 },
      { key: 'user:bob:geocoder_here:failed_responses:202611', delta: 1 },
      { key: 'org:acme:geocoder_here:success_responses:202611', delta: -3 },
      { key: 'org:acme:geocoder_here:empty_responses:202611', delta: 2 },
      { key: 'org:acme:geocoder_here:failed_responses:202611', delta: 1 },
    ]);
  });

  it('counts a successful isolines request once in success_responses at admission; a request without success takes it back', () => {
    const isolines: Reservation = { ...geocode, org: null, kind: 'isolines', serviceType: 'here_isolines', cost: 3 };
    expect(admissionIncrements(isolines, 3)).toEqual([
      { key: 'user:bob:here_isolines:isolines_generated:202611', delta: 3 },
      { key: 'user:bob:here_isolines:total_requests:202611', delta: 3 },
      { key: 'user:bob:here_isolines:success_responses:202611', delta: 1 },
    ]);
    expect(settlementIncrements(isolines, breakdownOf('success', 3))).toEqual([]);
    expect(settlementIncrements(isolines, { success: 1, empty: 0, failed: 2 })).toEqual([
      { key: 'user:bob:here_isolines:isolines_generated:202611', delta: -2 },
      { key: 'user:bob:here_isolines:failed_responses:202611', delta: 2 },
    ]);
    expect(settlementIncrements(isolines, breakdownOf('failed', 3))).toEqual([
      { key: 'user:bob:here_isolines:isolines_generated:202611', delta: -3 },
      { key: 'user:bob:here_isolines:failed_responses:202611', delta: 3 },
      { key: 'user:bob:here_isolines:success_responses:202611', delta: -1 },
    ]);
  });
});

describe('reservations', () => {
  it('round-trip through their signature', () => {
    expect(reservationFromSignature(reservationSignature(geocode))).toEqual(geocode);
  });

  it.each([
    [{ ...geocode, user: 'a:b' }],
    [{ ...geocode, org: '*' }],
    [{ ...geocode, kind: 'weather' }],
    [{ ...geocode, serviceType: 'geocoder here' }],
    [{ ...geocode, yyyymm: '202613' }],
    [{ ...geocode, day: '32' }],
    [{ ...geocode, day: '1' }],
    [{ ...geocode, cost: 0 }],
    [{ ...geocode, id: '../../x' }],
    [null],
  ])('rejects a tampered reservation %#', (reservation) => {
    expect(() => assertReservation(reservation)).toThrow(InvalidInputError);
  });
});

describe('planDecision', () => {
  it('reads the pool (org) keys over the cycle and charges user and org today', () => {
    const account = resolveAccount(
      {
        user: 'bob',
        userKey: 'rails:users:bob',
        userHash: { organization: 'acme' },
        org: 'acme',
        orgKey: 'rails:orgs:acme',
        orgHash: { geocoding_quota: '10', period_end_date: '2016-10-21 00:00:00 UTC' },
      },
      'geocoding',
    );
    const plan = planDecision(account, Date.parse('2017-03-20T10:00:00Z'));
    expect(plan.reads).toEqual([
      { key: 'org:acme:geocoder_here:success_responses:201702', fromDay: 21, toDay: 28 },
      { key: 'org:acme:geocoder_here:empty_responses:201702', fromDay: 21, toDay: 28 },
      { key: 'org:acme:geocoder_here:success_responses:201703', fromDay: 1, toDay: 20 },
      { key: 'org:acme:geocoder_here:empty_responses:201703', fromDay: 1, toDay: 20 },
    ]);
    expect(plan.charges).toEqual([
      { key: 'user:bob:geocoder_here:success_responses:201703', perCost: 1, fixed: 0 },
      { key: 'user:bob:geocoder_here:total_requests:201703', perCost: 1, fixed: 0 },
      { key: 'org:acme:geocoder_here:success_responses:201703', perCost: 1, fixed: 0 },
      { key: 'org:acme:geocoder_here:total_requests:201703', perCost: 1, fixed: 0 },
    ]);
    expect(plan.day).toBe('20');
    expect(plan.dayStartMs).toBe(Date.parse('2017-03-20T00:00:00Z'));
    expect(plan.dayEndMs).toBe(Date.parse('2017-03-21T00:00:00Z'));
  });
});
