// The one home of operator input rules in core: usage key parsing, the date parser, quotas, providers and kind names.
import { describe, expect, it } from 'vitest';
import { parseDateInput, parseProviderInput, parseQuotaInput } from '../../src/core/config.js';
import { parseUsageKey, usageKey } from '../../src/core/keys.js';
import { parseQuotaKindName } from '../../src/core/quota-kinds.js';

describe('parseUsageKey', () => {
  it('reads back what usageKey builds, for users and orgs', () => {
    expect(parseUsageKey(usageKey({ type: 'user', name: 'alice' }, 'geocoder_here', 'success_responses', '202601'))).toEqual({
      owner: { type: 'user', name: 'alice' },
      serviceType: 'geocoder_here',
      metric: 'success_responses',
      yyyymm: '202601',
      year: 2026,
      month: 1,
    });
    expect(parseUsageKey('org:acme:here_isolines:isolines_generated:202612')?.owner).toEqual({ type: 'org', name: 'acme' });
  });

  it.each([
    ['rails:users:alice'],
    ['user:alice:geocoder_here:success_responses:20261'],
    ['user:alice:geocoder_here:success_responses:202613'],
    ['user:alice:geocoder_here:bogus_metric:202601'],
    ['user:alice:geocoder_here:success_responses:202601:extra'],
    ['tollgate:credits:user:alice:geocoder_here:202601'],
  ])('refuses %s', (key) => {
    expect(parseUsageKey(key)).toBeNull();
  });
});

describe('parseDateInput: one parser, one message', () => {
  it.each([
    ['2016-10-10', '2016-10-10 00:00:00 UTC', 10],
    ['2016-10-10T00:00:00Z', '2016-10-10 00:00:00 UTC', 10],
    ['2016-02-29T23:59:59.999Z', '2016-02-29 23:59:59 UTC', 29],
    ['2016-10-31 12:00:00 UTC', '2016-10-31 12:00:00 UTC', 31],
    ['2016-10-31 12:00:00 +0000', '2016-10-31 12:00:00 +0000', 31],
  ])('%s', (input, stored, day) => {
    const parsed = parseDateInput(input);
    expect([parsed.periodEndDate, parsed.day.day]).toEqual([stored, day]);
  });

  it.each([['2016-02-30'], ['2017-02-29T00:00:00Z'], ['2016-10-10T00:00:00+02:00'], ['2016-10-10 25:00:00 UTC'], ['10/10/2016'], [''], [20161010]])(
    'refuses %j with the same message',
    (input) => {
      expect(() => parseDateInput(input)).toThrow(
        expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_DATE', message: expect.stringContaining('2016-10-10T00:00:00Z') }),
      );
    },
  );
});

describe('quota, provider and kind inputs', () => {
  it('quotas are non-negative integers as numbers or digits', () => {
    expect([parseQuotaInput(0), parseQuotaInput('1000'), parseQuotaInput(1e15)]).toEqual([0, 1000, 1e15]);
    for (const bad of [-1, 2.5, '1e3', '', ' 5', 1e16, null, true]) {
      expect(() => parseQuotaInput(bad)).toThrow(expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_QUOTA' }));
    }
  });

  it('providers are plain words', () => {
    expect(parseProviderInput('mapbox')).toBe('mapbox');
    for (const bad of ['a b', 'a:b', '', 'x'.repeat(65), 5]) {
      expect(() => parseProviderInput(bad)).toThrow(expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_PROVIDER' }));
    }
  });

  it('kinds are named as kinds or as the blocks the user view shows', () => {
    expect(['geocoding', 'isolines', 'routing', 'here_isolines', 'mapzen_routing'].map(parseQuotaKindName)).toEqual([
      'geocoding',
      'isolines',
      'routing',
      'isolines',
      'routing',
    ]);
    expect(() => parseQuotaKindName('teleport')).toThrow(expect.objectContaining({ code: 'ERR_TOLLGATE_UNKNOWN_QUOTA_KIND' }));
  });
});
