// Key layouts: CARTO names as before, cluster names hash-tagged by pool, and usage keys parsed back in both.
import { describe, expect, it } from 'vitest';
import { CARTO_LAYOUT, CLUSTER_LAYOUT, keyLayout } from '../../src/core/layout.js';

/** The hash tag Redis Cluster hashes: the part between the first `{` and the next `}`. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open === -1 || close === -1 ? key : key.slice(open + 1, close);
}

describe('the CARTO layout', () => {
  it('names keys as CARTO does, whatever the org', () => {
    expect(CARTO_LAYOUT.directoryKey('alice')).toBe('rails:users:alice');
    expect(CARTO_LAYOUT.userConfigKey('alice', 'acme')).toBe('rails:users:alice');
    expect(CARTO_LAYOUT.orgConfigKey('acme')).toBe('rails:orgs:acme');
    expect(CARTO_LAYOUT.usageKey({ type: 'user', name: 'alice' }, 'acme', 'geocoder_here', 'success_responses', '202611')).toBe(
      'user:alice:geocoder_here:success_responses:202611',
    );
    expect(CARTO_LAYOUT.reservationBucketKey('alice', 'acme', 'b.t.0')).toBe('tollgate:rsv:b.t.0');
    expect(CARTO_LAYOUT.requestIdKey('alice', 'acme', 'r1')).toBe('tollgate:request:alice:r1');
    expect(CARTO_LAYOUT.poolTag('alice', 'acme')).toBe('');
    expect(CARTO_LAYOUT.bucketsPerPool).toBe(false);
  });
});

describe('the cluster layout', () => {
  const member = { user: 'alice', org: 'acme' };
  const memberKeys = [
    CLUSTER_LAYOUT.userConfigKey(member.user, member.org),
    CLUSTER_LAYOUT.orgConfigKey(member.org),
    CLUSTER_LAYOUT.usageKey({ type: 'user', name: 'alice' }, 'acme', 'geocoder_here', 'success_responses', '202611'),
    CLUSTER_LAYOUT.usageKey({ type: 'org', name: 'acme' }, 'acme', 'geocoder_here', 'total_requests', '202611'),
    CLUSTER_LAYOUT.reservationBucketKey('alice', 'acme', 'b.t.0'),
    CLUSTER_LAYOUT.requestIdKey('alice', 'acme', 'r1'),
    CLUSTER_LAYOUT.creditLedgerKey({ type: 'user', name: 'alice' }, 'acme', 'geocoder_here', '202611'),
    CLUSTER_LAYOUT.creditLedgerKey({ type: 'org', name: 'acme' }, 'acme', 'geocoder_here', '202611'),
    CLUSTER_LAYOUT.journalMarkerKey('alice', 'acme', 'e1'),
    CLUSTER_LAYOUT.adjustmentLogKey('alice', 'acme'),
  ];

  it('puts every key of a member\'s decision in its org\'s slot', () => {
    expect(new Set(memberKeys.map(hashTag))).toEqual(new Set(['org:acme']));
    expect(new Set(memberKeys).size).toBe(memberKeys.length);
  });

  it('puts a user in no org in its own slot, directory entry included', () => {
    const keys = [
      CLUSTER_LAYOUT.directoryKey('bob'),
      CLUSTER_LAYOUT.userConfigKey('bob', null),
      CLUSTER_LAYOUT.usageKey({ type: 'user', name: 'bob' }, null, 'routing_here', 'success_responses', '202611'),
      CLUSTER_LAYOUT.reservationBucketKey('bob', null, 'b.t.0'),
      CLUSTER_LAYOUT.requestIdKey('bob', null, 'r1'),
      CLUSTER_LAYOUT.journalMarkerKey('bob', null, 'e1'),
    ];
    expect(new Set(keys.map(hashTag))).toEqual(new Set(['user:bob']));
    expect(CLUSTER_LAYOUT.directoryKey('bob')).toBe('rails:users:{user:bob}');
    expect(CLUSTER_LAYOUT.userConfigKey('alice', 'acme')).toBe('rails:orgs:{org:acme}:member:alice');
    expect(CLUSTER_LAYOUT.poolTag('bob', null)).toBe('{user:bob}');
  });

  it('parses its usage keys back, with the home of a member\'s own counters', () => {
    expect(CLUSTER_LAYOUT.parseUsageKey('user:{org:acme}:alice:geocoder_here:success_responses:202611')).toMatchObject({
      owner: { type: 'user', name: 'alice' },
      home: 'acme',
      serviceType: 'geocoder_here',
      metric: 'success_responses',
      yyyymm: '202611',
    });
    expect(CLUSTER_LAYOUT.parseUsageKey('user:{user:bob}:routing_here:total_requests:202612')).toMatchObject({ owner: { name: 'bob' }, home: null, month: 12 });
    expect(CLUSTER_LAYOUT.parseUsageKey('org:{org:acme}:isolines_here:failed_responses:202601')).toMatchObject({ owner: { type: 'org', name: 'acme' } });
    for (const bad of ['user:alice:geocoder_here:success_responses:202611', 'user:{user:bob}:x:not_a_metric:202611', 'org:{org:acme}:x:total_requests:202613']) {
      expect(CLUSTER_LAYOUT.parseUsageKey(bad)).toBeNull();
    }
    expect(CARTO_LAYOUT.parseUsageKey('user:alice:geocoder_here:success_responses:202611')).toMatchObject({ home: null });
  });

  it('matches a user\'s counters in every home with its SCAN patterns', () => {
    expect(CLUSTER_LAYOUT.usageKeyPatterns('user', 'alice')).toEqual(['user:{user:alice}:*', 'user:{org:*}:alice:*']);
    expect(CLUSTER_LAYOUT.usageKeyPatterns('org', 'acme')).toEqual(['org:{org:acme}:*']);
    expect(keyLayout('cluster')).toBe(CLUSTER_LAYOUT);
    expect(keyLayout('carto')).toBe(CARTO_LAYOUT);
  });
});
