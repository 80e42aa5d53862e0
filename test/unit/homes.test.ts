// The names operators' tools scan and parse in each key layout, and how the layout is chosen from options and the environment.
import { describe, expect, it } from 'vitest';
import { CARTO_LAYOUT, CLUSTER_LAYOUT } from '../../src/core/layout.js';
import { keyLayoutFromEnv } from '../../src/core/redis-target.js';
import { carriedMonths } from '../../src/redis/home-move.js';
import { configKeyPattern, configKeySearchPattern, homeUsagePattern, memberKeyPattern, memberOfKey, nameOfConfigKey } from '../../src/redis/homes.js';
import { ledgerPattern } from '../../src/redis/scan.js';

describe('config key patterns and names', () => {
  it.each([
    [CARTO_LAYOUT, 'user', 'rails:users:*', 'rails:users:alice', 'alice'],
    [CARTO_LAYOUT, 'org', 'rails:orgs:*', 'rails:orgs:acme', 'acme'],
    [CLUSTER_LAYOUT, 'user', 'rails:users:{user:*}', 'rails:users:{user:alice}', 'alice'],
    [CLUSTER_LAYOUT, 'org', 'rails:orgs:{org:*}', 'rails:orgs:{org:acme}', 'acme'],
  ] as const)('%s %s: pattern %s, %s names %s', (layout, type, pattern, key, name) => {
    expect(configKeyPattern(layout, type)).toBe(pattern);
    expect(nameOfConfigKey(layout, type, key)).toBe(name);
  });

  it('never takes a member hash, another layout\'s key or an odd name for a user or org', () => {
    expect(nameOfConfigKey(CLUSTER_LAYOUT, 'org', 'rails:orgs:{org:acme}:member:alice')).toBeNull();
    expect(nameOfConfigKey(CLUSTER_LAYOUT, 'user', 'rails:users:alice')).toBeNull();
    expect(nameOfConfigKey(CARTO_LAYOUT, 'user', 'rails:users:a:b')).toBeNull();
    expect(nameOfConfigKey(CARTO_LAYOUT, 'user', 'rails:users:')).toBeNull();
  });

  it('searches inside the tag, and escapes a backslash in the query', () => {
    expect(configKeySearchPattern(CLUSTER_LAYOUT, 'user', 'ali')).toBe('rails:users:{user:*ali*}');
    expect(configKeySearchPattern(CARTO_LAYOUT, 'org', 'a\\b')).toBe('rails:orgs:*a\\\\b*');
  });

  it('finds an org\'s member hashes only in the cluster layout', () => {
    expect(memberKeyPattern(CARTO_LAYOUT, 'acme')).toBeNull();
    expect(memberKeyPattern(CLUSTER_LAYOUT, 'acme')).toBe('rails:orgs:{org:acme}:member:*');
    expect(memberOfKey(CLUSTER_LAYOUT, 'acme', 'rails:orgs:{org:acme}:member:alice')).toBe('alice');
    expect(memberOfKey(CLUSTER_LAYOUT, 'acme', 'rails:orgs:{org:other}:member:alice')).toBeNull();
  });

  it('builds the usage and ledger patterns of one home', () => {
    expect(homeUsagePattern(CLUSTER_LAYOUT, 'alice', 'acme', '202611')).toBe('user:{org:acme}:alice:*:*:202611');
    expect(homeUsagePattern(CLUSTER_LAYOUT, 'alice', null, '202611')).toBe('user:{user:alice}:*:*:202611');
    expect(homeUsagePattern(CARTO_LAYOUT, 'alice', null, '202611')).toBe('user:alice:*:*:202611');
    expect(ledgerPattern(CLUSTER_LAYOUT, { type: 'user', name: 'alice' })).toBe('tollgate:credits:{org:*}:user:alice:*:*');
    expect(ledgerPattern(CLUSTER_LAYOUT, { type: 'org', name: 'acme' })).toBe('tollgate:credits:{org:acme}:org:*:*');
    expect(ledgerPattern(CARTO_LAYOUT, { type: 'user', name: 'alice' })).toBe('tollgate:credits:user:alice:*:*');
  });

  it('carries the move\'s month and the one before, across a year', () => {
    expect(carriedMonths('202611-0123456789ab')).toEqual(['202611', '202610']);
    expect(carriedMonths('202701-0123456789ab')).toEqual(['202701', '202612']);
  });
});

describe('keyLayoutFromEnv', () => {
  const cluster = { kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }] } as const;
  it.each([
    [{}, null, undefined, 'carto'],
    [{}, 'redis://127.0.0.1:6379', undefined, 'carto'],
    [{}, cluster, undefined, 'cluster'],
    [{ TOLLGATE_KEY_LAYOUT: 'carto' }, cluster, undefined, 'carto'],
    [{ TOLLGATE_KEY_LAYOUT: 'cluster' }, null, undefined, 'cluster'],
    [{ TOLLGATE_KEY_LAYOUT: ' ' }, cluster, undefined, 'cluster'],
    [{ TOLLGATE_KEY_LAYOUT: 'cluster' }, cluster, 'carto', 'carto'],
  ] as const)('env %j, target %j, option %s: %s', (env, target, given, expected) => {
    expect(keyLayoutFromEnv(env, target, given)).toBe(expected);
  });

  it('refuses another name, saying where it came from and never echoing it', () => {
    expect(() => keyLayoutFromEnv({ TOLLGATE_KEY_LAYOUT: 'redis://u:secret@h' }, null)).toThrow(/^TOLLGATE_KEY_LAYOUT must be one of carto, cluster$/);
    expect(() => keyLayoutFromEnv({}, null, 'sharded')).toThrow(/^--key-layout must be one of carto, cluster$/);
    expect(() => keyLayoutFromEnv({}, null, 'sharded')).toThrow(expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_OPTIONS' }));
  });
});
