// Runs the demo service: Redis, seed, HTTP server, banner with ready-to-paste curl commands, graceful shutdown.
import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Tollgate,
  combineObservers,
  connectForFailOpen,
  createLogger,
  describeTarget,
  createMetrics,
  isQuotaKind,
  keyLayoutFromEnv,
  loggingObserver,
  type QuotaKind,
  type RedisTarget,
  type TollgateLogger,
  type TollgateMetrics,
} from 'tollgate';
import { createDemoApp, type DemoApp } from './app.js';
import { DEMO_QUOTAS, missingDemoAccounts, resolveRedis, seedDemo, type DemoRedis, type SeededUser } from './bootstrap.js';
import { CitiesGazetteer, type GeocodingProvider } from './gazetteer.js';
import { StraightLineIsolines, type IsolinesProvider } from './isolines.js';

/**
 * What the demo's HTTP server allows a client, against slow or piled-up connections. Node's
 * defaults wait 5 minutes for a request and accept any number of connections: a client
 * trickling a body one byte at a time would hold a connection (and its memory) that long,
 * before authentication. A host app serving Tollgate's guard should set the same three.
 */
export interface ServerLimits {
  /** Time to receive the request headers (`server.headersTimeout`). */
  readonly headersTimeoutMs: number;
  /** Time to receive the whole request, body included (`server.requestTimeout`); then 408 and the connection closes. */
  readonly requestTimeoutMs: number;
  /** Connections open at once (`server.maxConnections`); past it new ones are closed at once. */
  readonly maxConnections: number;
}

/** The demo's limits: a bulk body of 64 KB arrives in far less than 30 s on any real link. */
export const DEFAULT_SERVER_LIMITS: ServerLimits = Object.freeze({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxConnections: 1024 });

/** An HTTP server for `app` with {@link ServerLimits} applied (not listening yet). */
export function limitedServer(app: RequestListener, limits: ServerLimits): Server {
  const server = createServer(
    {
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      requestTimeout: limits.requestTimeoutMs,
      // Node checks both timeouts on this interval (default 30 s): check often enough to honour them.
      connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    app,
  );
  server.maxConnections = limits.maxConnections;
  return server;
}

/** Settings of {@link startDemo}; `main.ts` reads them from the environment. */
export interface DemoServiceOptions {
  readonly port: number;
  readonly host: string;
  /** REDIS_URL; when absent (and no `redisTarget`) the default URL, else a private redis-server. */
  readonly redisUrl?: string | undefined;
  /**
   * Where Redis is, as `redisTargetFromEnv` reads it: a Cluster or Sentinel target is used
   * as it is (it must answer); a single URL is treated like `redisUrl`. Wins over `redisUrl`.
   */
  readonly redisTarget?: RedisTarget | null | undefined;
  /** The URL tried when `redisUrl` is absent; tests point it at a dead port. */
  readonly defaultRedisUrl?: string;
  /** Data directory of a private redis-server (TOLLGATE_DEMO_REDIS_DIR); default under the OS temp dir. */
  readonly redisDataDir?: string | undefined;
  readonly failOpen?: readonly QuotaKind[];
  /** Mounts the admin API at /admin behind this bearer token (TOLLGATE_ADMIN_TOKEN); none when absent. */
  readonly adminToken?: string | undefined;
  /** The key layout (TOLLGATE_KEY_LAYOUT): `carto` or `cluster`; default cluster on a Redis Cluster, else carto. */
  readonly keyLayout?: string | undefined;
  /** Replaces the gazetteer (default: {@link CitiesGazetteer}). */
  readonly geocoder?: GeocodingProvider;
  /** Replaces the isolines provider (default: {@link StraightLineIsolines}). */
  readonly isolines?: IsolinesProvider;
  /** Overrides of {@link DEFAULT_SERVER_LIMITS}. */
  readonly serverLimits?: Partial<ServerLimits>;
  /** How long shutdown waits for in-flight requests before cutting connections. Default 10 s. */
  readonly shutdownGraceMs?: number;
  /** Prints the start-up text (Redis choice, banner): plain lines meant for a person. */
  readonly log: (message: string) => void;
  /** Structured logs (pino). Default {@link createLogger}: JSON on stderr, pretty on a terminal. */
  readonly logger?: TollgateLogger;
}

/** A running demo. */
export interface DemoService {
  /** `http://host:port`. */
  readonly url: string;
  readonly redis: DemoRedis;
  readonly demo: DemoApp;
  readonly tollgate: Tollgate;
  /** The metrics served at /metrics. */
  readonly metrics: TollgateMetrics;
  readonly accounts: { readonly user: SeededUser; readonly smallUser: SeededUser };
  /**
   * Stops accepting connections, lets in-flight requests finish and settle, writes what the
   * journal holds, closes Redis (and stops a private redis-server). Safe to call twice.
   */
  shutdown(): Promise<void>;
}

/** `TOLLGATE_FAIL_OPEN=geocoding,isolines` as quota kinds; unknown words are a start-up error. */
export function parseFailOpen(raw: string | undefined): QuotaKind[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((word) => {
    const kind = word.trim();
    if (!isQuotaKind(kind)) throw new Error(`TOLLGATE_FAIL_OPEN: unknown quota kind "${kind}"`);
    return kind;
  });
}

function banner(url: string, accounts: DemoService['accounts'], admin: boolean): string {
  const lines = [`Tollgate demo listening on ${url}`];
  const { user, smallUser } = accounts;
  if (user.key === null || smallUser.key === null) {
    lines.push('The demo users keep only a key digest; use the keys you set for them.');
  }
  if (user.key !== null) {
    const base = `${url}/u/${user.user}/api/v1`;
    lines.push(
      '',
      `Geocode (user ${user.user}, spends the demo org's quota of ${DEMO_QUOTAS.org.geocoding}):`,
      `  curl -i '${base}/geocode?q=Madrid,%20ES&api_key=${user.key}'`,
      'Bulk geocode, costs 3:',
      `  curl -i -X POST -H 'Content-Type: application/json' -d '{"addresses":["Lyon","Osaka","Nowhereville"]}' '${base}/geocode?api_key=${user.key}'`,
      'Isolines, costs 3 (one per range; straight-line circles):',
      `  curl -i '${base}/isolines?lat=40.4168&lon=-3.7038&range=300,600,900&type=isochrone&mode=walk&api_key=${user.key}'`,
      'Route (straight line, a duration per mode: walk, bicycle, car), costs 1:',
      `  curl -i '${base}/route?from=40.4168,-3.7038&to=41.3874,2.1686&mode=car&api_key=${user.key}'`,
      'Quota report:',
      `  curl '${base}/quota?api_key=${user.key}'`,
    );
  }
  if (smallUser.key !== null) {
    lines.push(
      '',
      `Refused: ${smallUser.user} has ${DEMO_QUOTAS.smallUser.isolines} isolines a month, this asks for 3 -> 429, nothing counted:`,
      `  curl -i '${url}/u/${smallUser.user}/api/v1/isolines?lat=40.4168&lon=-3.7038&range=300,600,900&api_key=${smallUser.key}'`,
    );
  }
  lines.push(
    '',
    `Health: curl ${url}/healthz   Readiness (re-seeds lost demo accounts): curl ${url}/readyz`,
    `Metrics (Prometheus): curl ${url}/metrics`,
    `API reference: ${url}/docs (OpenAPI 3.1: ${url}/openapi.json)`,
  );
  if (admin) {
    lines.push(
      `Admin API: ${url}/admin (Authorization: Bearer $TOLLGATE_ADMIN_TOKEN), see docs/admin.md`,
      `Usage dashboard: ${url}/admin/dashboard (log in with $TOLLGATE_ADMIN_TOKEN)`,
    );
  }
  lines.push('Stop with Ctrl-C (SIGINT) or SIGTERM.');
  return lines.join('\n');
}

/**
 * Seeds the demo accounts again, with the keys the banner printed, when Redis has lost them;
 * answers the config keys it had to create (none when all were there). Concurrent calls share one run.
 */
function demoReseeder(
  tollgate: Tollgate,
  keys: { readonly user: string | null; readonly smallUser: string | null },
  log: (message: string) => void,
): () => Promise<string[]> {
  let running: Promise<string[]> | null = null;
  const once = async (): Promise<string[]> => {
    const missing = await missingDemoAccounts(tollgate.redis, tollgate.keyLayout);
    if (missing.length === 0) return missing;
    await seedDemo(tollgate.redis, keys, tollgate.keyLayout);
    log(`Redis had lost the demo accounts (${missing.join(', ')}): seeded them again with the same keys. Their usage is gone; see "Persistence" in README.md.`);
    return missing;
  };
  return () => {
    running ??= once().finally(() => {
      running = null;
    });
    return running;
  };
}

/** Starts everything and prints the banner. */
export async function startDemo(options: DemoServiceOptions): Promise<DemoService> {
  const given = options.redisTarget ?? undefined;
  const redis: DemoRedis =
    given !== undefined && given.kind !== 'single'
      ? { url: describeTarget(given), private: false, dataDir: null, stop: async () => undefined }
      : await resolveRedis({
          url: given?.url ?? options.redisUrl,
          log: options.log,
          dataDir: options.redisDataDir,
          ...(options.defaultRedisUrl === undefined ? {} : { defaultUrl: options.defaultRedisUrl }),
        });
  const target: RedisTarget = given !== undefined && given.kind !== 'single' ? given : { kind: 'single', url: redis.url };
  if (target.kind !== 'single') options.log(`Using ${redis.url}.`);
  let server: Server | undefined;
  // A client that never queues commands: needed for fail-open, harmless otherwise (503 at once while Redis is away).
  const client = await connectForFailOpen(target, 1000).catch(async (error: unknown) => {
    await redis.stop();
    throw new Error(`${describeTarget(target)} does not answer: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  });
  // Tollgate listens to the client's errors: one log line when Redis goes away, one when it is back.
  const logger = options.logger ?? createLogger();
  const metrics = createMetrics();
  let tollgate: Tollgate;
  try {
    const keyLayout = keyLayoutFromEnv({}, target, options.keyLayout);
    tollgate = new Tollgate({ redis: client, keyLayout, logger, observer: combineObservers(metrics.observer, loggingObserver(logger)) });
  } catch (error) {
    // Refused (a Redis Cluster, until its layout exists): do not leave the client reconnecting.
    client.disconnect();
    throw error;
  }
  try {
    const accounts = await seedDemo(tollgate.redis, {}, tollgate.keyLayout);
    const reseed = demoReseeder(tollgate, { user: accounts.user.key, smallUser: accounts.smallUser.key }, options.log);
    // A Redis that comes back without its data (no persistence, or a wiped AOF) gets the demo accounts again.
    client.on('ready', () => void reseed().catch(() => undefined));
    const demo = createDemoApp({
      readiness: async () => {
        try {
          const reseeded = await reseed();
          return { ready: true, demoAccounts: reseeded.length > 0 ? 'reseeded' : 'present' };
        } catch (error) {
          return { ready: false, reason: `the demo accounts could not be checked or seeded: ${error instanceof Error ? error.message : String(error)}` };
        }
      },
      tollgate,
      geocoder: options.geocoder ?? CitiesGazetteer.load(),
      isolines: options.isolines ?? new StraightLineIsolines(),
      failOpen: options.failOpen ?? [],
      logger,
      metrics: metrics.registry,
      ...(options.adminToken ? { adminToken: options.adminToken } : {}),
    });
    server = limitedServer(demo.app, { ...DEFAULT_SERVER_LIMITS, ...options.serverLimits });
    server.listen(options.port, options.host);
    await once(server, 'listening');
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    options.log(banner(url, accounts, Boolean(options.adminToken)));
    logger.info({ event: 'demo.listening', url, failOpen: options.failOpen ?? [], admin: Boolean(options.adminToken), privateRedis: redis.private }, 'demo listening');
    const listening = server;
    let stopping: Promise<void> | undefined;
    const shutdown = (): Promise<void> => {
      stopping ??= (async () => {
        const grace = setTimeout(() => listening.closeAllConnections(), options.shutdownGraceMs ?? 10_000);
        grace.unref();
        // close() stops accepting and resolves once in-flight requests have ended.
        await new Promise<void>((resolve) => listening.close(() => resolve()));
        clearTimeout(grace);
        await demo.close();
        await client.quit().catch(() => client.disconnect());
        await redis.stop();
      })();
      return stopping;
    };
    return { url, redis, demo, tollgate, metrics, accounts, shutdown };
  } catch (error) {
    server?.close();
    client.disconnect();
    await redis.stop();
    throw error;
  }
}
