// Config parsing and the user/org merge rules of SPEC section 1.
import { describe, expect, it } from 'vitest';
import {
  parseCount,
  parseFlag,
  parseOrganization,
  parsePeriodEndDay,
  resolveAccount,
  type AccountSource,
} from '../../src/core/config.js';
import { ERROR_CODES, InvalidConfigError, InvalidInputError } from '../../src/core/errors.js';
import { assertName } from '../../src/core/names.js';

const lone = (userHash: Record<string, string>): AccountSource => ({
  user: 'alice',
  userKey: 'rails:users:alice',
  userHash,
  org: null,
  orgKey: null,
  orgHash: null,
});

const member = (userHash: Record<string, string>, orgHash: Record<string, string>): AccountSource => ({
  user: 'bob',
  userKey: 'rails:users:bob',
  userHash: { organization: 'acme', ...userHash },
  org: 'acme',
  orgKey: 'rails:orgs:acme',
  orgHash,
});

describe('parseCount', () => {
  it.each([
    [undefined, 0],
    ['', 0],
    ['0', 0],
    ['1000', 1000],
    ['000042', 42],
    ['1000000000000000', 1e15],
  ])('%j -> %i', (raw, expected) => {
    expect(parseCount('k', 'geocoding_quota', raw)).toBe(expected);
  });

  it.each(['abc', '-5', '1e99', '12.5', ' 10', '10 ', '+3', '0x10', '1000000000000001', 'Infinity', 'NaN'])(
    'rejects %j with a typed error naming key and field',
    (raw) => {
      const error = (() => {
        try {
          parseCount('rails:users:alice', 'geocoding_quota', raw);
        } catch (caught) {
          return caught;
        }
        return null;
      })();
      expect(error).toBeInstanceOf(InvalidConfigError);
      expect(error).toMatchObject({ code: ERROR_CODES.invalidConfig, key: 'rails:users:alice', field: 'geocoding_quota' });
    },
  );
});

describe('parseFlag', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['True', true],
    ['false', false],
    ['1', false],
    ['yes', false],
    ['', false],
    [undefined, false],
  ])('%j -> %s', (raw, expected) => {
    expect(parseFlag(raw)).toBe(expected);
  });
});

describe('parsePeriodEndDay', () => {
  it.each([
    ['2016-10-10 00:00:00 UTC', 10],
    ['2016-10-31 00:00:00 +0000', 31],
    ['2016-02-29 12:30:00 -0500', 29],
    ['', null],
    [undefined, null],
  ])('%j -> %j', (raw, expected) => {
    expect(parsePeriodEndDay('k', raw)).toBe(expected);
  });

  it.each(['2016-10-10', 'yesterday', '2016-13-01 00:00:00 UTC', '2017-02-29 00:00:00 UTC', '2016-10-10 25:00:00 UTC', '2016-10-10T00:00:00Z', '2016-10-10 00:00:00 PST'])(
    'rejects %j',
    (raw) => {
      expect(() => parsePeriodEndDay('k', raw)).toThrow(InvalidConfigError);
    },
  );
});

describe('parseOrganization', () => {
  it('treats missing and empty as no org, and rejects names unsafe as key parts', () => {
    expect(parseOrganization('k', undefined)).toBeNull();
    expect(parseOrganization('k', '')).toBeNull();
    expect(parseOrganization('k', 'acme')).toBe('acme');
    expect(() => parseOrganization('k', 'ac:me')).toThrow(InvalidConfigError);
    expect(() => parseOrganization('k', 'a*')).toThrow(InvalidConfigError);
  });
});

describe('resolveAccount', () => {
  it('reads a lone user with CARTO defaults', () => {
    const account = resolveAccount(lone({ geocoding_quota: '100' }), 'geocoding');
    expect(account).toMatchObject({
      org: null,
      quota: 100,
      softLimit: false,
      provider: 'heremaps',
      serviceType: 'geocoder_here',
      periodEndDay: null,
      blockPrice: null,
    });
  });

  it('names service types per kind and provider as SPEC section 2 does', () => {
    expect(resolveAccount(lone({ geocoder_provider: 'google' }), 'geocoding').serviceType).toBe('geocoder_google');
    expect(resolveAccount(lone({ isolines_provider: 'mapbox' }), 'isolines').serviceType).toBe('mapbox_isolines');
    expect(resolveAccount(lone({}), 'isolines').serviceType).toBe('here_isolines');
    expect(resolveAccount(lone({ routing_provider: 'tomtom' }), 'routing').serviceType).toBe('routing_tomtom');
    expect(resolveAccount(lone({}), 'routing').serviceType).toBe('routing_mapzen');
  });

  it('takes quota, provider and period from the org and the soft flag from the user', () => {
    const account = resolveAccount(
      member(
        { geocoding_quota: '5', soft_geocoding_limit: 'true', geocoder_provider: 'google', period_end_date: '2016-10-03 00:00:00 UTC' },
        { geocoding_quota: '500', geocoder_provider: 'mapbox', period_end_date: '2016-10-17 00:00:00 UTC', soft_geocoding_limit: 'false' },
      ),
      'geocoding',
    );
    expect(account).toMatchObject({ org: 'acme', quota: 500, softLimit: true, provider: 'mapbox', periodEndDay: 17 });
  });

  it("falls back to the user's value where the org hash lacks the field", () => {
    const account = resolveAccount(
      member({ geocoding_quota: '5', geocoder_provider: 'google', period_end_date: '2016-10-03 00:00:00 UTC' }, { name: 'acme' }),
      'geocoding',
    );
    expect(account).toMatchObject({ quota: 5, provider: 'google', periodEndDay: 3 });
  });

  it('treats an org quota of "" as 0, not as missing', () => {
    expect(resolveAccount(member({ geocoding_quota: '5' }, { geocoding_quota: '' }), 'geocoding').quota).toBe(0);
  });

  it('ignores a soft flag on the org hash (orgs have none)', () => {
    expect(resolveAccount(member({}, { soft_geocoding_limit: 'true' }), 'geocoding').softLimit).toBe(false);
  });

  it('fingerprints the raw fields it relied on, missing ones as null', () => {
    const account = resolveAccount(member({ geocoding_quota: '5' }, { geocoding_quota: '50' }), 'geocoding');
    expect(account.fingerprint).toEqual([
      {
        key: 'rails:users:bob',
        fields: [
          ['organization', 'acme'],
          ['moving_to', null],
          ['geocoding_quota', '5'],
          ['soft_geocoding_limit', null],
          ['geocoder_provider', null],
          ['period_end_date', null],
        ],
      },
      { key: 'rails:orgs:acme', fields: [['geocoding_quota', '50'], ['geocoder_provider', null], ['period_end_date', null]] },
    ]);
  });

  it.each([
    [{ geocoding_quota: 'abc' }, 'geocoding_quota'],
    [{ period_end_date: 'soon' }, 'period_end_date'],
    [{ geocoder_provider: 'here maps' }, 'geocoder_provider'],
    [{ geocoding_block_price: '-1' }, 'geocoding_block_price'],
  ])('rejects garbled %j', (hash, field) => {
    expect(() => resolveAccount(lone(hash), 'geocoding')).toThrow(expect.objectContaining({ field }));
  });
});

describe('assertName', () => {
  it.each([
    ['', 'empty'],
    ['a'.repeat(129), 'too long'],
    ['a:b', 'colon'],
    ['a*', 'star'],
    ['a?', 'question mark'],
    ['a[1]', 'brackets'],
    ['{a}', 'braces'],
    ['a b', 'space'],
    ['a\tb', 'tab'],
    ['a\nb', 'newline'],
    ['a\u0000b', 'NUL'],
    ['a\u007fb', 'DEL'],
    ['a\u2028b', 'line separator'],
  ])('rejects %j (%s)', (value) => {
    expect(() => assertName('user', value)).toThrow(InvalidInputError);
  });

  it('accepts CARTO-style names, including 128 characters', () => {
    for (const name of ['alice', 'team-42', 'user.name', 'x_y', 'a'.repeat(128), 'ünïcode']) {
      expect(assertName('user', name)).toBe(name);
    }
  });

  it('rejects non-strings', () => {
    for (const value of [undefined, null, 42, {}, ['a']]) expect(() => assertName('user', value)).toThrow(InvalidInputError);
  });
});
