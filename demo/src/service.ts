// Runs the demo service: Redis, seed, HTTP server, banner with ready-to-paste curl commands, graceful shutdown.
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Tollgate, connectForFailOpen, isQuotaKind, type QuotaKind } from 'tollgate';
import { createDemoApp, type DemoApp } from './app.js';
import { DEMO_QUOTAS, resolveRedis, seedDemo, type DemoRedis, type SeededUser } from './bootstrap.js';
import { CitiesGazetteer, type GeocodingProvider } from './gazetteer.js';
import { StraightLineIsolines, type IsolinesProvider } from './isolines.js';

/** Settings of {@link startDemo}; `main.ts` reads them from the environment. */
export interface DemoServiceOptions {
  readonly port: number;
  readonly host: string;
  /** REDIS_URL; when absent the default URL, else a private redis-server. */
  readonly redisUrl?: string | undefined;
  /** The URL tried when `redisUrl` is absent; tests point it at a dead port. */
  readonly defaultRedisUrl?: string;
  readonly failOpen?: readonly QuotaKind[];
  /** Mounts the admin API at /admin behind this bearer token (TOLLGATE_ADMIN_TOKEN); none when absent. */
  readonly adminToken?: string | undefined;
  /** Replaces the gazetteer (default: {@link CitiesGazetteer}). */
  readonly geocoder?: GeocodingProvider;
  /** Replaces the isolines provider (default: {@link StraightLineIsolines}). */
  readonly isolines?: IsolinesProvider;
  /** How long shutdown waits for in-flight requests before cutting connections. Default 10 s. */
  readonly shutdownGraceMs?: number;
  readonly log: (message: string) => void;
}

/** A running demo. */
export interface DemoService {
  /** `http://host:port`. */
  readonly url: string;
  readonly redis: DemoRedis;
  readonly demo: DemoApp;
  readonly tollgate: Tollgate;
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

function banner(url: string, accounts: DemoService['accounts']): string {
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
  lines.push('', `Health: curl ${url}/healthz`, 'Stop with Ctrl-C (SIGINT) or SIGTERM.');
  return lines.join('\n');
}

/** Starts everything and prints the banner. */
export async function startDemo(options: DemoServiceOptions): Promise<DemoService> {
  const redis = await resolveRedis({
    url: options.redisUrl,
    log: options.log,
    ...(options.defaultRedisUrl === undefined ? {} : { defaultUrl: options.defaultRedisUrl }),
  });
  let server: Server | undefined;
  // A client that never queues commands: needed for fail-open, harmless otherwise (503 at once while Redis is away).
  const client = await connectForFailOpen(redis.url, 1000).catch(async (error: unknown) => {
    await redis.stop();
    throw error;
  });
  client.on('error', () => undefined); // reconnects in the background; requests answer 503 meanwhile
  const tollgate = new Tollgate({ redis: client });
  try {
    const accounts = await seedDemo(tollgate.redis);
    const demo = createDemoApp({
      tollgate,
      geocoder: options.geocoder ?? CitiesGazetteer.load(),
      isolines: options.isolines ?? new StraightLineIsolines(),
      failOpen: options.failOpen ?? [],
      log: options.log,
      ...(options.adminToken ? { adminToken: options.adminToken } : {}),
    });
    server = demo.app.listen(options.port, options.host);
    await once(server, 'listening');
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    options.log(banner(url, accounts));
    if (options.adminToken) {
      options.log(`Admin API: ${url}/admin (Authorization: Bearer $TOLLGATE_ADMIN_TOKEN), see docs/admin.md`);
    }
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
    return { url, redis, demo, tollgate, accounts, shutdown };
  } catch (error) {
    server?.close();
    client.disconnect();
    await redis.stop();
    throw error;
  }
}
