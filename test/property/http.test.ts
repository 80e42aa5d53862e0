// Property-based: arbitrary requests to the demo (paths, query strings, bodies, headers) never get a 5xx, errors are problem+json, and a refusal writes nothing.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import { request as httpRequest, Agent } from 'node:http';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { createDemoApp, type DemoApp } from '../../demo/src/app.js';
import { CitiesGazetteer } from '../../demo/src/gazetteer.js';
import { StraightLineIsolines } from '../../demo/src/isolines.js';
import { serve, type Served } from '../http/support.js';
import { uniqueName, writeOrg, writeUser } from '../helpers/fixtures.js';
import { keyspaceChanges } from '../helpers/keyspace.js';
import { startRedisServer, type TestRedis } from '../helpers/redis-server.js';

const RUNS = 1000;

let server: TestRedis;
let admin: Redis;
let tollgate: Tollgate;
let demo: DemoApp;
let served: Served;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const org = uniqueName('ho');
const users = [uniqueName('hu'), uniqueName('hm'), uniqueName('hs')];
const keyOf = (user: string): string => `key-${user}`;

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
  tollgate = new Tollgate({ redis: server.url });
  await writeOrg(admin, org, { geocoding_quota: '400', here_isolines_quota: '200', geocoder_provider: 'geonames', isolines_provider: 'straightline' });
  await writeUser(admin, users[0] as string, { geocoding_quota: '300', here_isolines_quota: '100', map_key: keyOf(users[0] as string), isolines_provider: 'straightline' });
  await writeUser(admin, users[1] as string, { organization: org, map_key: keyOf(users[1] as string) });
  await writeUser(admin, users[2] as string, { geocoding_quota: '3', here_isolines_quota: '2', map_key: keyOf(users[2] as string) });
  demo = createDemoApp({ tollgate, geocoder: CitiesGazetteer.load(), isolines: new StraightLineIsolines(), logger: SILENT_LOGGER });
  served = await serve(demo.app);
});
afterAll(async () => {
  agent.destroy();
  await served?.close();
  await demo?.close();
  await tollgate?.close();
  admin?.disconnect();
  await server?.stop();
});

const printable = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);
const enc = (arb: fc.Arbitrary<string>): fc.Arbitrary<string> => arb.map((value) => encodeURIComponent(value));
/** Text that is not valid percent-encoding, or is otherwise odd in a URL. */
const junk = fc.constantFrom('%', '%E0%A4%A', '%ZZ', '%C3%28', '..', '%2F', '%3A', 'a%00b', '%20', '+', '&&', '==', '');

const userSegment = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...users) },
  { weight: 1, arbitrary: enc(fc.string()) },
  { weight: 1, arbitrary: enc(fc.string({ unit: 'binary', maxLength: 20 })) },
  { weight: 1, arbitrary: junk },
);
const endpoint = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('geocode', 'isolines', 'quota') },
  { weight: 1, arbitrary: fc.constantFrom('nope', '', 'geocode/extra', 'GEOCODE') },
  { weight: 1, arbitrary: enc(printable) },
);
const queryValue = fc.oneof(
  enc(fc.constantFrom('Madrid', 'Lyon, FR', 'Nowhereville', '40.4', '-3.7', '300,600', '60', '1,2,3,4,5,6', 'isochrone', 'isodistance', 'walk', 'car', '0', '-1', '1e9', 'NaN')),
  enc(fc.string({ maxLength: 30 })),
  junk,
);
const queryKey = fc.oneof(fc.constantFrom('q', 'limit', 'lat', 'lon', 'range', 'type', 'mode', 'api_key', 'x'), enc(printable), junk);

interface GeneratedRequest {
  method: string;
  user: string;
  endpoint: string;
  keyInQuery: 'valid' | 'wrong' | 'none' | 'twice';
  query: Array<[string, string]>;
  headers: Record<string, string>;
  body: string | null;
}

const bodyArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 3, arbitrary: fc.array(fc.oneof(fc.constantFrom('Lyon', 'Osaka, JP', 'Nowhereville'), fc.string({ maxLength: 20 })), { maxLength: 120 }).map((addresses) => JSON.stringify({ addresses })) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom('{"addresses": [', '{"addresses":["Lyon"],"cost":0}', 'x'.repeat(70_000), '\u0000\u0001', '[]', 'null') },
);

const anyRequestArb: fc.Arbitrary<GeneratedRequest> = fc.record({
  method: fc.oneof({ weight: 12, arbitrary: fc.constantFrom('GET', 'GET', 'POST') }, { weight: 2, arbitrary: fc.constantFrom('HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH') }),
  user: userSegment,
  endpoint,
  keyInQuery: fc.constantFrom('valid', 'valid', 'valid', 'wrong', 'none', 'twice'),
  // Mostly the parameters the endpoints read, with plausible values, so validation and the quota are reached too.
  query: fc.oneof(
    fc.array(fc.tuple(fc.constantFrom('q', 'limit', 'lat', 'lon', 'range', 'type', 'mode'), queryValue), { maxLength: 6 }),
    fc.array(fc.tuple(queryKey, queryValue), { maxLength: 6 }),
  ),
  headers: fc.record(
    {
      'content-type': fc.oneof(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded'), printable),
      authorization: fc.oneof(fc.constantFrom('Bearer', 'Bearer  ', 'Basic eA==', 'bearer x'), printable),
      accept: fc.oneof(fc.constantFrom('application/json', '*/*', 'text/html'), printable),
      'x-anything': printable,
    },
    { requiredKeys: [] },
  ),
  body: bodyArb,
});

/** Well-formed requests of a known user with arbitrary text where users type it: these reach the handlers and the quota. */
const wellFormedArb: fc.Arbitrary<GeneratedRequest> = fc.record({
  method: fc.constant('GET'),
  user: fc.constantFrom(...users),
  endpoint: fc.constant('geocode'),
  keyInQuery: fc.constant('valid' as const),
  query: fc.tuple(fc.oneof(fc.constantFrom('Madrid', 'Lyon, FR', 'München'), fc.string({ minLength: 1, maxLength: 30 }))).map(([q]) => [['q', encodeURIComponent(q)]] as Array<[string, string]>),
  headers: fc.constant({}),
  body: fc.constant(null),
});

const requestArb = fc.oneof({ weight: 3, arbitrary: anyRequestArb }, { weight: 1, arbitrary: wellFormedArb });

function urlOf(generated: GeneratedRequest): string {
  const user = decodeURIComponentSafe(generated.user);
  const params: string[] = generated.query.map(([key, value]) => `${key}=${value}`);
  if (generated.keyInQuery === 'valid' || generated.keyInQuery === 'twice') params.push(`api_key=${encodeURIComponent(keyOf(user))}`);
  if (generated.keyInQuery === 'wrong') params.push('api_key=wrong-key');
  if (generated.keyInQuery === 'twice') params.push('api_key=other-key');
  return `/u/${generated.user}/api/v1/${generated.endpoint}${params.length > 0 ? `?${params.join('&')}` : ''}`;
}

function decodeURIComponentSafe(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function send(generated: GeneratedRequest): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(served.url);
    const headers: Record<string, string> = { ...generated.headers };
    if (generated.body !== null) headers['content-length'] = String(Buffer.byteLength(generated.body));
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: generated.method, path: urlOf(generated), headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(generated.body ?? undefined);
  });
}

describe('the demo under arbitrary HTTP input', () => {
  it(`${RUNS} generated requests: never a 5xx, every error is problem+json, and nothing is written unless the request was served`, async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestArb, async (generated) => {
        const before = await keyspaceChanges(admin);
        const reply = await send(generated);
        await demo.guards.geocoding.drain();
        await demo.guards.isolines.drain();
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
        expect(reply.status).toBeGreaterThanOrEqual(200);
        expect(reply.status).toBeLessThan(500);
        if (reply.status >= 400) {
          expect(reply.headers['content-type']).toMatch(/^application\/problem\+json/);
          if (generated.method !== 'HEAD') {
            const body = JSON.parse(reply.body) as { status: number; code: unknown };
            expect(body.status).toBe(reply.status);
            expect(String(body.code)).toMatch(/^ERR_TOLLGATE_[A-Z_]+$/);
          }
          // A refused request leaves Redis exactly as it was.
          expect(await keyspaceChanges(admin)).toBe(before);
        }
        // Nothing a client sends is echoed back as a key.
        expect(reply.body).not.toContain('other-key');
      }),
      { numRuns: RUNS },
    );
    console.info(`HTTP property run, statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    // The run reached the handlers, the validators, the quota and authentication alike.
    for (const status of [200, 400, 401, 404, 429]) expect(statuses.get(status) ?? 0).toBeGreaterThan(0);
  });
});
