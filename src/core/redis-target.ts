// Where Redis is (one server, a Cluster, a Sentinel group), read from the environment and described without passwords. Pure: no ioredis.
import { ERROR_CODES, InvalidInputError } from './errors.js';
import { KEY_LAYOUT_NAMES, type KeyLayoutName } from './layout.js';

/** A host and port, as a cluster seed or a sentinel. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Where Tollgate's Redis is. `single`: one server (`REDIS_URL`); `cluster`: seed nodes of a
 * Redis Cluster (`REDIS_CLUSTER`); `sentinel`: the sentinels watching a master
 * (`REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`).
 */
export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string }
  | { readonly kind: 'cluster'; readonly nodes: readonly HostPort[] }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly name: string };

/** The environment variables {@link redisTargetFromEnv} reads. */
export const REDIS_ENV = Object.freeze({
  url: 'REDIS_URL',
  cluster: 'REDIS_CLUSTER',
  sentinels: 'REDIS_SENTINELS',
  sentinelName: 'REDIS_SENTINEL_NAME',
});

const invalid = (message: string): InvalidInputError => new InvalidInputError(ERROR_CODES.invalidOptions, message);

// A DNS name or IPv4 address; IPv6 in brackets. No user info, no path: these lists name no password.
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/;

/**
 * `host:port[,host:port...]` as a list. Messages name the variable and the entry's position,
 * never its text (it may be a URL with a password pasted by mistake).
 */
export function parseHostPorts(variable: string, raw: string): HostPort[] {
  const entries = raw.split(',').map((entry) => entry.trim());
  return entries.map((entry, index) => {
    const colon = entry.lastIndexOf(':');
    const host = entry.slice(0, colon);
    const port = Number(entry.slice(colon + 1));
    if (colon <= 0 || !HOST.test(host) || !/^\d{1,5}$/.test(entry.slice(colon + 1)) || port < 1 || port > 65_535) {
      throw invalid(`${variable}: entry ${index + 1} of ${entries.length} is not host:port (a name or IP address, a port 1-65535)`);
    }
    return { host: host.startsWith('[') ? host.slice(1, -1) : host, port };
  });
}

/**
 * The Redis the environment names: `REDIS_CLUSTER`, `REDIS_SENTINELS` with
 * `REDIS_SENTINEL_NAME`, or `REDIS_URL`; `null` when none is set (the caller picks its
 * default). Setting more than one of the three, or half of the Sentinel pair, is an error.
 */
export function redisTargetFromEnv(env: Readonly<Record<string, string | undefined>>): RedisTarget | null {
  const given = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const url = given(REDIS_ENV.url);
  const cluster = given(REDIS_ENV.cluster);
  const sentinels = given(REDIS_ENV.sentinels);
  const sentinelName = given(REDIS_ENV.sentinelName);
  const set = [url && REDIS_ENV.url, cluster && REDIS_ENV.cluster, sentinels && REDIS_ENV.sentinels].filter(Boolean);
  if (set.length > 1) throw invalid(`set only one of ${set.join(', ')}: they name different Redis deployments`);
  if ((sentinels === undefined) !== (sentinelName === undefined)) {
    throw invalid(`${REDIS_ENV.sentinels} and ${REDIS_ENV.sentinelName} go together: the sentinels, and the name of the master they watch`);
  }
  if (cluster !== undefined) return { kind: 'cluster', nodes: parseHostPorts(REDIS_ENV.cluster, cluster) };
  if (sentinels !== undefined && sentinelName !== undefined) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(sentinelName)) throw invalid(`${REDIS_ENV.sentinelName}: 1-64 of A-Z a-z 0-9 . _ -`);
    return { kind: 'sentinel', sentinels: parseHostPorts(REDIS_ENV.sentinels, sentinels), name: sentinelName };
  }
  return url === undefined ? null : singleTarget(REDIS_ENV.url, url);
}

/** The environment variable naming the key layout: `carto` or `cluster` (docs/key-layout.md). */
export const KEY_LAYOUT_ENV = 'TOLLGATE_KEY_LAYOUT';

/**
 * The key layout to use with `target`: `given` (a `--key-layout` option) wins, else
 * `TOLLGATE_KEY_LAYOUT`, else `cluster` for a Redis Cluster and `carto` for anything else.
 * Any other value is `ERR_TOLLGATE_INVALID_OPTIONS`.
 */
export function keyLayoutFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  target: RedisTarget | string | null,
  given?: string,
): KeyLayoutName {
  const fromEnv = env[KEY_LAYOUT_ENV]?.trim();
  const raw = given !== undefined && given !== '' ? given : fromEnv === '' ? undefined : fromEnv;
  if (raw === undefined) return typeof target === 'object' && target?.kind === 'cluster' ? 'cluster' : 'carto';
  if (!(KEY_LAYOUT_NAMES as readonly string[]).includes(raw)) {
    throw invalid(`${raw === given ? '--key-layout' : KEY_LAYOUT_ENV} must be one of ${KEY_LAYOUT_NAMES.join(', ')}`);
  }
  return raw as KeyLayoutName;
}

/** A URL safe to print: the password, if any, replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable URL>';
  }
}

/** One line naming the target, safe for logs: URLs lose their password. */
export function describeTarget(target: RedisTarget): string {
  const list = (nodes: readonly HostPort[]): string =>
    nodes.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`).join(',');
  switch (target.kind) {
    case 'single':
      return `the Redis at ${redactUrl(target.url)}`;
    case 'cluster':
      return `the Redis Cluster seeded by ${list(target.nodes)}`;
    case 'sentinel':
      return `the master "${target.name}" of the sentinels at ${list(target.sentinels)}`;
  }
}

/** A `redis://` URL given on a command line or in code, checked like `REDIS_URL`. */
export function singleTarget(source: string, url: string): RedisTarget {
  if (!/^rediss?:\/\//.test(url)) throw invalid(`${source} must be a redis:// or rediss:// URL`);
  return { kind: 'single', url };
}
