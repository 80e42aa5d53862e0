// The server process of `npm run bench:http`: every compared design on one Express app, one port.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express, { type RequestHandler } from 'express';
import { Redis } from 'ioredis';
import { createDemoApp } from '../demo/src/app.js';
import { CitiesGazetteer } from '../demo/src/gazetteer.js';
import { DEFAULT_LIMITS, parseGeocodeQuery } from '../demo/src/inputs.js';
import { StraightLineIsolines } from '../demo/src/isolines.js';
import { quotaGuard } from '../src/http/index.js';
import { Tollgate } from '../src/tollgate.js';

/** Counts the commands an ioredis client sends: what one request costs in round trips. */
function countCommands(client: Redis, counter: { sent: number }): Redis {
  const original = client.sendCommand.bind(client);
  client.sendCommand = ((command: never) => {
    counter.sent += 1;
    return original(command);
  }) as typeof client.sendCommand;
  return client;
}

/**
 * The reference: the smallest correct quota middleware a team might write, one EVALSHA that
 * checks and counts a user's daily usage. No API key, no billing cycle, no settlement.
 */
const REFERENCE_LUA = `
local used = redis.call('ZSCORE', KEYS[1], ARGV[2])
used = tonumber(used) or 0
if used + tonumber(ARGV[1]) > tonumber(ARGV[3]) then return 0 end
redis.call('ZINCRBY', KEYS[1], ARGV[1], ARGV[2])
return 1`;

function referenceMiddleware(client: Redis): RequestHandler {
  client.defineCommand('referenceQuota', { numberOfKeys: 1, lua: REFERENCE_LUA });
  const call = (client as unknown as { referenceQuota: (...args: Array<string | number>) => Promise<number> }).referenceQuota.bind(client);
  return (req, res, next) => {
    const day = new Date().toISOString().slice(8, 10);
    call(`reference:${req.params.username}`, 1, day, 1e12).then(
      (allowed) => (allowed === 1 ? next() : res.status(429).end()),
      (error: unknown) => next(error),
    );
  };
}

async function serve(redisUrl: string): Promise<void> {
  const counter = { sent: 0 };
  const tollgateClient = countCommands(new Redis(redisUrl), counter);
  const tollgate = new Tollgate({ redis: tollgateClient });
  const referenceClient = countCommands(new Redis(redisUrl), counter);
  const gazetteer = CitiesGazetteer.load();
  const ok: RequestHandler = (_req, res) => void res.json({ ok: true });

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.get('/bare/u/:username/api/v1/thing', ok);
  app.get('/guard/u/:username/api/v1/thing', quotaGuard({ tollgate, kind: 'geocoding' }), ok);
  app.get('/reference/u/:username/api/v1/thing', referenceMiddleware(referenceClient), ok);
  // The demo's geocode handler as the demo serves it (guarded: the demo app as its own server, as
  // in production, since mounting it as a sub-app would add Express's sub-app overhead to every
  // request), and the same work unguarded.
  const demo = createDemoApp({ tollgate, geocoder: gazetteer, isolines: new StraightLineIsolines() }).app;
  app.get('/demo-bare/u/:username/api/v1/geocode', (req, res) => {
    const input = parseGeocodeQuery(req.query as Record<string, unknown>, DEFAULT_LIMITS);
    const places = gazetteer.search(input.q, input.limit);
    res.type('application/geo+json').json({
      type: 'FeatureCollection',
      query: input.q,
      features: places.map((place) => ({
        type: 'Feature',
        geometry: { type: 'Point', coordinates: [place.lon, place.lat] },
        properties: { name: place.name, country: place.country, population: place.population, geonames_id: place.id },
      })),
      // The demo's body to the byte, so both send the same response less the guard's headers.
      attribution: gazetteer.attribution,
    });
  });

  const server = app.listen(0, '127.0.0.1');
  const demoServer = demo.listen(0, '127.0.0.1');
  await Promise.all([once(server, 'listening'), once(demoServer, 'listening')]);
  process.on('message', (message) => {
    if (message === 'commands') process.send?.({ commands: counter.sent });
    // A clean exit, so `node --cpu-prof` writes its profile.
    if (message === 'exit') process.exit(0);
  });
  process.send?.({ port: (server.address() as AddressInfo).port, demoPort: (demoServer.address() as AddressInfo).port });
}

await serve(process.argv[2] as string);
