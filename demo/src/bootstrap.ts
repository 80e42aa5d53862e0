// First run on a fresh machine: find a Redis (or start a private one) and seed the demo accounts when absent.
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { CARTO_LAYOUT, MAP_KEY_FIELD, redactUrl, type KeyLayout, type RedisClient } from 'tollgate';
import { redisAnswers, startPrivateRedis } from './private-server.js';

/** The URL used when REDIS_URL is not set. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Where the private redis-server keeps its append-only file unless TOLLGATE_DEMO_REDIS_DIR says otherwise. */
export const DEFAULT_DEMO_REDIS_DIR = join(tmpdir(), 'tollgate-demo-redis');

/**
 * redis-server arguments of the demo's private server: an append-only file fsynced every second
 * in `dataDir`, so a restart (of it or of the demo) keeps usage; a crash loses at most ~1 s.
 */
export function demoRedisArgs(dataDir: string): string[] {
  return ['--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dataDir];
}

/** A Redis the demo may use, and how to let go of it. */
export interface DemoRedis {
  /** The URL of a single Redis; for a Cluster or a Sentinel group, a description (no passwords). */
  readonly url: string;
  /** True when the demo started this redis-server itself. */
  readonly private: boolean;
  /** The private server's data directory (its append-only file); `null` for a Redis the demo did not start. */
  readonly dataDir: string | null;
  /** Stops the private redis-server, if any. */
  stop(): Promise<void>;
}


/** The full path of `command` on PATH, or `null`. */
export function findOnPath(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * REDIS_URL when given (it must answer); else the default URL; else, when `redis-server`
 * is installed, a private one on a free port. `log` says which, without any password.
 */
export async function resolveRedis(options: {
  readonly url?: string | undefined;
  readonly defaultUrl?: string;
  /** Data directory of a private redis-server; default {@link DEFAULT_DEMO_REDIS_DIR}. */
  readonly dataDir?: string | undefined;
  readonly log: (message: string) => void;
}): Promise<DemoRedis> {
  const none = async (): Promise<void> => undefined;
  if (options.url !== undefined && options.url !== '') {
    if (await redisAnswers(options.url)) return { url: options.url, private: false, dataDir: null, stop: none };
    throw new Error(`REDIS_URL ${redactUrl(options.url)} does not answer; start that Redis or unset REDIS_URL`);
  }
  const fallback = options.defaultUrl ?? DEFAULT_REDIS_URL;
  if (await redisAnswers(fallback)) {
    options.log(`Using the Redis at ${redactUrl(fallback)} (set REDIS_URL to use another).`);
    return { url: fallback, private: false, dataDir: null, stop: none };
  }
  const binary = findOnPath('redis-server');
  if (binary === null) {
    throw new Error(`No Redis answers at ${redactUrl(fallback)} and redis-server is not installed: install Redis or set REDIS_URL`);
  }
  const dataDir = claimDataDir(options.dataDir ?? DEFAULT_DEMO_REDIS_DIR, options.log);
  const server = await startPrivateRedis({ binary, args: demoRedisArgs(dataDir) }).catch((error: unknown) => {
    releaseDataDir(dataDir);
    throw error;
  });
  const stop = async (): Promise<void> => {
    await server.stop();
    releaseDataDir(dataDir);
  };
  const started: DemoRedis = { url: server.url, private: true, dataDir, stop };
  options.log(
    `No Redis answered at ${redactUrl(fallback)}, so the demo started a private redis-server at ${started.url}, ` +
      `with an append-only file (appendfsync everysec) in ${dataDir}: usage survives a restart of it or of the demo ` +
      '(a crash loses at most about 1 s). Set TOLLGATE_DEMO_REDIS_DIR to keep it elsewhere; delete the directory to start afresh.',
  );
  return started;
}

const LOCK_FILE = 'tollgate-demo.pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `dir` for this process's redis-server. Two servers appending to one AOF would corrupt
 * it, so when another live demo holds the directory, a fresh one next to it is used instead.
 */
function claimDataDir(dir: string, log: (message: string) => void): string {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, LOCK_FILE);
  let holder = 0;
  try {
    holder = Number(readFileSync(lock, 'utf8'));
  } catch {
    holder = 0;
  }
  if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
    const fresh = mkdtempSync(`${dir}-`);
    log(`${dir} is in use by another demo (pid ${holder}); this one keeps its Redis data in ${fresh}.`);
    writeFileSync(join(fresh, LOCK_FILE), String(process.pid));
    return fresh;
  }
  writeFileSync(lock, String(process.pid));
  return dir;
}

function releaseDataDir(dir: string): void {
  rmSync(join(dir, LOCK_FILE), { force: true });
}

/** The accounts the demo seeds. */
export const DEMO_ACCOUNTS = Object.freeze({
  org: 'tollgate-demo-org',
  /** A member of the org: spends the org's pooled quotas. */
  user: 'tollgate-demo',
  /** A user on its own with tiny hard quotas, to see a 429. */
  smallUser: 'tollgate-demo-small',
});

/** Known quotas of the seeded accounts, as the docs and the start-up banner state them. */
export const DEMO_QUOTAS = Object.freeze({
  org: { geocoding: 1000, isolines: 500, routing: 200 },
  smallUser: { geocoding: 3, isolines: 2, routing: 1 },
});

const PROVIDERS = { geocoder_provider: 'geonames', isolines_provider: 'straightline', routing_provider: 'straightline' } as const;

/** A seeded user and the key to show it with; `key` is `null` when the user keeps only a digest. */
export interface SeededUser {
  readonly user: string;
  readonly key: string | null;
  readonly created: boolean;
}

/**
 * KEYS[1] the hash; ARGV field, value, field, value... Creates the hash only when no key of that
 * name exists, in one atomic step, so an operator's changes (or a second demo starting at the
 * same moment) are never overwritten. Replies 1 when it created the hash, 0 when it existed.
 */
const CREATE_UNLESS_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`;

/** The seeding script on the client, defined once per client. */
type SeedingClient = RedisClient & { tollgateDemoCreateHash?: (key: string, ...fieldsAndValues: string[]) => Promise<number> };

/** Creates the hash unless it exists (one atomic step); answers whether it did. */
async function ensureHash(client: RedisClient, key: string, fields: Record<string, string>): Promise<boolean> {
  const seeding = client as SeedingClient;
  if (seeding.tollgateDemoCreateHash === undefined) {
    client.defineCommand('tollgateDemoCreateHash', { numberOfKeys: 1, lua: CREATE_UNLESS_EXISTS });
  }
  const created = await seeding.tollgateDemoCreateHash!(key, ...Object.entries(fields).flat());
  return created === 1;
}

async function keyOf(client: RedisClient, user: string, org: string | null, layout: KeyLayout): Promise<string | null> {
  const mapKey = await client.hget(layout.userConfigKey(user, org), MAP_KEY_FIELD);
  return mapKey === null || mapKey === '' ? null : mapKey;
}

/** The config hashes the demo seeds, in a key layout (the cluster layout adds the member's directory entry). */
export function demoAccountKeys(layout: KeyLayout = CARTO_LAYOUT): string[] {
  return [
    ...new Set([
      layout.orgConfigKey(DEMO_ACCOUNTS.org),
      layout.directoryKey(DEMO_ACCOUNTS.user),
      layout.userConfigKey(DEMO_ACCOUNTS.user, DEMO_ACCOUNTS.org),
      layout.directoryKey(DEMO_ACCOUNTS.smallUser),
    ]),
  ];
}

/** The demo's config hashes that do not exist (a Redis restarted without persistence, or flushed). */
export async function missingDemoAccounts(client: RedisClient, layout: KeyLayout = CARTO_LAYOUT): Promise<string[]> {
  const keys = demoAccountKeys(layout);
  const exists = await Promise.all(keys.map((key) => client.exists(key)));
  return keys.filter((_, index) => exists[index] === 0);
}

/**
 * Creates the demo org and users when their hashes are absent; existing ones are left as
 * they are (an operator may have changed them). Keys are random, or those of `keys` (so a
 * re-seed keeps the keys the banner printed), and kept in `map_key`, in clear, so the banner
 * can show them on every start: fine for a demo, not for production, where
 * `api_key_sha256` should hold only a digest.
 */
export async function seedDemo(
  client: RedisClient,
  keys: { readonly user?: string | null; readonly smallUser?: string | null } = {},
  layout: KeyLayout = CARTO_LAYOUT,
): Promise<{ user: SeededUser; smallUser: SeededUser }> {
  const common = { period_end_date: '2016-01-01 00:00:00 UTC', ...PROVIDERS };
  await ensureHash(client, layout.orgConfigKey(DEMO_ACCOUNTS.org), {
    ...common,
    geocoding_quota: String(DEMO_QUOTAS.org.geocoding),
    here_isolines_quota: String(DEMO_QUOTAS.org.isolines),
    mapzen_routing_quota: String(DEMO_QUOTAS.org.routing),
    geocoding_block_price: '150',
    here_isolines_block_price: '300',
  });
  // Cluster layout: the member's fields in its member hash, its directory entry naming the org.
  const memberKey = layout.userConfigKey(DEMO_ACCOUNTS.user, DEMO_ACCOUNTS.org);
  if (memberKey !== layout.directoryKey(DEMO_ACCOUNTS.user)) {
    await ensureHash(client, layout.directoryKey(DEMO_ACCOUNTS.user), { organization: DEMO_ACCOUNTS.org });
  }
  const userCreated = await ensureHash(client, memberKey, {
    ...common,
    organization: DEMO_ACCOUNTS.org,
    map_key: keys.user ?? randomBytes(16).toString('hex'),
    soft_geocoding_limit: 'false',
    soft_here_isolines_limit: 'false',
    soft_mapzen_routing_limit: 'false',
  });
  const smallCreated = await ensureHash(client, layout.directoryKey(DEMO_ACCOUNTS.smallUser), {
    ...common,
    map_key: keys.smallUser ?? randomBytes(16).toString('hex'),
    geocoding_quota: String(DEMO_QUOTAS.smallUser.geocoding),
    here_isolines_quota: String(DEMO_QUOTAS.smallUser.isolines),
    mapzen_routing_quota: String(DEMO_QUOTAS.smallUser.routing),
    soft_geocoding_limit: 'false',
    soft_here_isolines_limit: 'false',
  });
  return {
    user: { user: DEMO_ACCOUNTS.user, key: await keyOf(client, DEMO_ACCOUNTS.user, DEMO_ACCOUNTS.org, layout), created: userCreated },
    smallUser: { user: DEMO_ACCOUNTS.smallUser, key: await keyOf(client, DEMO_ACCOUNTS.smallUser, null, layout), created: smallCreated },
  };
}
