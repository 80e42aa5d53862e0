// The demo as `npm start` runs it: the banner lists /metrics, /docs and the dashboard, and a scrape shows the counters move after the banner's curls.
import { describe, expect, it } from 'vitest';
import { startDemo } from '../../demo/src/service.js';
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import type { GeocodingProvider } from '../../demo/src/gazetteer.js';
import { startRedisServer } from '../helpers/redis-server.js';

const TOKEN = 'demo-observability-token-0123456789';
// Two cities are enough for the banner's geocodes ("Nowhereville" stays unmatched).
const places: GeocodingProvider = {
  name: 'tiny',
  search: (q) =>
    ['Madrid', 'Lyon', 'Osaka'].filter((city) => q.toLowerCase().startsWith(city.toLowerCase())).map((city, index) => ({ id: index + 1, name: city, country: 'XX', lat: 1, lon: 2, population: 1000 })),
};

/** Sum of the samples of `metric` whose labels include every `labels` pair. */
function sample(text: string, metric: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
    if (match === null || match[1] !== metric) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((pair) => [pair[1], pair[2]]));
    if (Object.entries(labels).every(([name, value]) => found[name] === value)) sum += Number(match[3]);
  }
  return sum;
}

/** Runs one `curl` line of the banner with fetch: method, JSON body, URL. */
async function runCurl(line: string): Promise<number> {
  const url = /'(http[^']+)'/.exec(line)?.[1] ?? /(http\S+)/.exec(line)?.[1];
  if (url === undefined) throw new Error(`no URL in ${line}`);
  const body = /-d '([^']+)'/.exec(line)?.[1];
  const response = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await response.arrayBuffer();
  return response.status;
}

describe('demo observability', () => {
  it('lists /metrics, /docs and /admin/dashboard, and its curls move the counters a scrape shows', async () => {
    const server = await startRedisServer();
    const printed: string[] = [];
    const service = await startDemo({
      port: 0, host: '127.0.0.1', redisUrl: server.url, adminToken: TOKEN, geocoder: places, log: (m) => printed.push(m), logger: SILENT_LOGGER,
    });
    try {
      const banner = printed.join('\n');
      expect(banner).toContain(`curl ${service.url}/metrics`);
      expect(banner).toContain(`${service.url}/docs`);
      expect(banner).toContain(`${service.url}/admin/dashboard`);
      expect(banner).toContain(`curl ${service.url}/readyz`);

      const scrape = async (): Promise<string> => {
        const response = await fetch(`${service.url}/metrics`);
        expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
        return response.text();
      };
      const before = await scrape();
      const curls = banner.split('\n').filter((line) => line.trim().startsWith('curl') && line.includes('/u/'));
      expect(curls.length).toBeGreaterThanOrEqual(5);
      const statuses = [];
      for (const line of curls) statuses.push(await runCurl(line));
      // Every curl answers 200 but the last, the refusal.
      expect(statuses.slice(0, -1).every((status) => status === 200)).toBe(true);
      expect(statuses.at(-1)).toBe(429);
      await service.demo.guards.geocoding.drain();
      await service.demo.guards.isolines.drain();
      const after = await scrape();

      const moved = (metric: string, labels: Record<string, string>) => sample(after, metric, labels) - sample(before, metric, labels);
      expect(moved('tollgate_decisions_total', { kind: 'geocoding', result: 'allowed', mode: 'consume' })).toBe(2);
      expect(moved('tollgate_decisions_total', { kind: 'isolines', result: 'allowed', mode: 'consume' })).toBe(1);
      expect(moved('tollgate_decisions_total', { kind: 'isolines', result: 'quota_exceeded' })).toBe(1);
      expect(moved('tollgate_units_charged_total', { kind: 'geocoding', service_type: 'geocoder_geonames' })).toBe(4);
      expect(moved('tollgate_units_charged_total', { kind: 'isolines' })).toBe(3);
      // A plain success needs no settle; the bulk geocode (2 found, 1 empty) settles its split.
      expect(moved('tollgate_settles_total', { kind: 'geocoding', outcome: 'split', status: 'settled' })).toBe(1);
      expect(moved('tollgate_decision_duration_seconds_count', { kind: 'geocoding', mode: 'consume' })).toBe(2);
      expect(sample(after, 'tollgate_journal_capacity', { kind: 'geocoding' })).toBe(10_000);
      expect(after).not.toContain('tollgate-demo-small');

      expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
      const docs = await fetch(`${service.url}/docs`);
      expect(await docs.text()).toContain('/docs/assets/swagger-ui-bundle.js');
      expect((await fetch(`${service.url}/docs/assets/swagger-ui-bundle.js`)).status).toBe(200);
      expect((await fetch(`${service.url}/admin/dashboard`)).status).toBe(200);
    } finally {
      await service.shutdown();
      await server.stop();
    }
  });
});
