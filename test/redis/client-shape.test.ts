// An ioredis client is recognised by its shape: a second copy of ioredis works, anything else is refused at construction.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, InvalidInputError, Tollgate } from '../../src/index.js';
import { useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Inside the repository's node_modules, so the copy's own dependencies resolve from there;
// a copy in another folder is a different module to Node, with classes of its own.
const copyRoot = join(root, 'node_modules', '.cache', `tollgate-second-ioredis-${process.pid}`);

/** The ioredis classes of a second, separate copy of the package. */
function secondIoredis(): { Redis: typeof Redis; Cluster: typeof Cluster } {
  const target = join(copyRoot, 'node_modules', 'ioredis');
  mkdirSync(dirname(target), { recursive: true });
  cpSync(join(root, 'node_modules', 'ioredis'), target, { recursive: true, dereference: true });
  return createRequire(join(copyRoot, 'index.js'))('ioredis') as { Redis: typeof Redis; Cluster: typeof Cluster };
}

afterAll(() => rmSync(copyRoot, { recursive: true, force: true }));

describe('the redis option', () => {
  it('accepts a client made by a second copy of ioredis, and decides and counts through it', async () => {
    const other = secondIoredis();
    const client = new other.Redis(redis.url());
    try {
      expect(client instanceof Redis).toBe(false); // the situation instanceof got wrong
      const user = name('u');
      await writeUser(redis.client(), user, { geocoding_quota: '2' });
      const gate = new Tollgate({ redis: client });
      expect((await gate.consume({ user, kind: 'geocoding', cost: 2 })).allowed).toBe(true);
      expect((await gate.consume({ user, kind: 'geocoding' })).allowed).toBe(false);
      expect((await gate.usage({ user, kind: 'geocoding' })).metrics.success_responses).toBe(2);
    } finally {
      client.disconnect();
    }
  });

  it('recognises a cluster client of either copy, and refuses it for the layout, not the shape (not connected)', () => {
    const other = secondIoredis();
    for (const ClusterClass of [Cluster, other.Cluster]) {
      const cluster = new ClusterClass([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
      // Until the cluster key layout exists (docs/cluster.md), a cluster is refused by name.
      expect(() => new Tollgate({ redis: cluster })).toThrow(/needs the cluster key layout/);
      cluster.disconnect();
    }
  });

  const client = (): Redis => redis.client();
  const methods = Object.fromEntries(
    ['defineCommand', 'pipeline', 'multi', 'sendCommand', 'evalsha', 'hgetall', 'time', 'quit', 'disconnect', 'on'].map((m) => [m, () => undefined]),
  );
  it.each<[string, () => unknown]>([
    ['an empty object', () => ({})],
    ['null', () => null],
    ['a function', () => () => undefined],
    ['an object with the methods but no isCluster flag', () => ({ ...methods, status: 'ready', options: {} })],
    ['an object with the methods and flag but no options', () => ({ ...methods, isCluster: false, status: 'ready' })],
    ['a "cluster" without nodes()', () => ({ ...methods, isCluster: true, status: 'ready', options: {} })],
    ['a pipeline of a real client', () => client().pipeline()],
    ['a client of another library (node-redis-like)', () => ({ isOpen: true, connect: () => undefined, sendCommand: () => undefined, options: {} })],
  ])('refuses %s with ERR_TOLLGATE_INVALID_OPTIONS', (_label, make) => {
    const attempt = (): Tollgate => new Tollgate({ redis: make() as never });
    expect(attempt).toThrow(InvalidInputError);
    expect(attempt).toThrow(expect.objectContaining({ code: ERROR_CODES.invalidOptions }));
  });
});
