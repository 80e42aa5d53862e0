// Reservation ids: unique per client even when the server-clock estimate steps back over a minute boundary; per pool in the cluster layout.
import { describe, expect, it } from 'vitest';
import { CARTO_LAYOUT, CLUSTER_LAYOUT } from '../../src/core/layout.js';
import { BUCKET_ENTRIES, ReservationIds, SLOT_MS } from '../../src/redis/reservations.js';

describe('ReservationIds', () => {
  it('never hands out an id twice when the clock estimate goes back across a minute boundary', () => {
    const ids = new ReservationIds(300_000, CARTO_LAYOUT);
    // Cached users carry their own clock offsets: one call estimates 60.010 s, the next 59.995 s.
    const seen = new Set<string>();
    for (const nowMs of [59_990, 60_010, 59_995, 60_020, 59_999, 120_001, 119_000, 60_000]) {
      const { id } = ids.next(nowMs, 'alice', null);
      expect(seen.has(id)).toBe(false);
      seen.add(id);
    }
  });

  it('fills a bucket with BUCKET_ENTRIES ids, then opens the next, and sets each bucket\'s expiry until told it is set', () => {
    const ids = new ReservationIds(300_000, CARTO_LAYOUT);
    const slots = Array.from({ length: BUCKET_ENTRIES + 1 }, (_, i) => ids.next(SLOT_MS * 10 + i, `u${i}`, null));
    expect(new Set(slots.slice(0, BUCKET_ENTRIES).map((slot) => slot.bucketKey)).size).toBe(1);
    expect(slots[BUCKET_ENTRIES]?.bucketKey).not.toBe(slots[0]?.bucketKey);
    expect(slots[0]?.expireAtMs).toBe(SLOT_MS * 11 + 300_000);
    ids.written(slots[0]!);
    expect(ids.next(SLOT_MS * 10 + 100, 'u0', null).expireAtMs).toBe(SLOT_MS * 11 + 300_000);
  });

  it('numbers each pool apart in the cluster layout, so a bucket sits in its pool\'s slot', () => {
    const ids = new ReservationIds(300_000, CLUSTER_LAYOUT);
    const a = ids.next(1000, 'alice', 'acme');
    const b = ids.next(1000, 'bob', null);
    const c = ids.next(1000, 'carol', 'acme');
    expect(a.bucketKey).toMatch(/^tollgate:rsv:\{org:acme\}:/);
    expect(b.bucketKey).toMatch(/^tollgate:rsv:\{user:bob\}:/);
    expect(c.bucketKey).toBe(a.bucketKey);
    expect(c.field).not.toBe(a.field);
  });
});
