// Benchmark: does a wrong key for a known user answer in the same time as any key for an unknown user? Percentiles of both, interleaved.
import { Redis } from 'ioredis';
import { AuthenticationError, Tollgate } from '../src/index.js';
import { startPrivateRedis } from '../src/redis/private-server.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 5800);

async function timed(call: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  try {
    await call();
    throw new Error('expected a refusal');
  } catch (error) {
    if (!(error instanceof AuthenticationError)) throw error;
  }
  return Number(process.hrtime.bigint() - started) / 1000;
}

async function main(): Promise<void> {
  const server = await startPrivateRedis();
  const admin = new Redis(server.url);
  try {
    await admin.hset('rails:users:known', { geocoding_quota: '1000', map_key: 'the-right-key', 'api_key_sha256:ci': 'a'.repeat(64) });
    await admin.hset('rails:orgs:acme', { geocoding_quota: '1000' });
    await admin.hset('rails:users:member', { organization: 'acme', map_key: 'member-key' });
    const tollgate = new Tollgate({ redis: server.url });
    await tollgate.consume({ user: 'known', kind: 'geocoding', apiKey: 'the-right-key' }); // cached, as a busy user is
    await tollgate.consume({ user: 'member', kind: 'geocoding', apiKey: 'member-key' });
    const series: Record<string, number[]> = { 'wrong key, known user': [], 'wrong key, org member': [], 'unknown user': [] };
    for (let i = 0; i < SAMPLES + 200; i += 1) {
      const wrong = await timed(() => tollgate.consume({ user: 'known', kind: 'geocoding', apiKey: `guess-${i}` }));
      const member = await timed(() => tollgate.consume({ user: 'member', kind: 'geocoding', apiKey: `guess-${i}` }));
      const unknown = await timed(() => tollgate.consume({ user: `nobody${i % 50}`, kind: 'geocoding', apiKey: `guess-${i}` }));
      if (i < 200) continue; // warm-up
      series['wrong key, known user']?.push(wrong);
      series['wrong key, org member']?.push(member);
      series['unknown user']?.push(unknown);
    }
    console.log(`${SAMPLES} refusals each, interleaved, one connection, private redis-server; µs`);
    console.log(['case'.padEnd(24), ...['p10', 'p50', 'p90', 'p99'].map((p) => p.padStart(8))].join(' '));
    for (const [name, values] of Object.entries(series)) {
      values.sort((a, b) => a - b);
      const at = (q: number): string => (values[Math.floor(q * (values.length - 1))] as number).toFixed(1).padStart(8);
      console.log([name.padEnd(24), at(0.1), at(0.5), at(0.9), at(0.99)].join(' '));
    }
    await tollgate.close();
  } finally {
    admin.disconnect();
    await server.stop();
  }
}

await main();
