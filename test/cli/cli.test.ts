// The tollgate command, run in-process against a real Redis: every command, its output, exit codes and untouched state on bad input.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { runCli } from '../../src/cli/program.js';
import { snapshot, useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { sink } from '../helpers/streams.js';

const redis = useTestRedis();
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await runCli(args, { stdout: out.stream, stderr: err.stream, env: { REDIS_URL: redis.url() } });
  return { code, out: out.text(), err: err.text() };
}

async function json<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const result = await cli('--json', ...args);
  expect(result.err).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.out) as T;
}

const fresh = useNames(redis.client);

describe('tollgate user and org commands', () => {
  it('creates a user and shows it the way the CARTO endpoint does', async () => {
    const user = fresh('cli-u');
    expect((await cli('user', 'create', user)).code).toBe(0);
    expect((await cli('user', 'set-quota', user, 'geocoding', '1000')).code).toBe(0);
    await redis.client().hset(`rails:users:${user}`, 'geocoding_block_price', '1500');
    expect((await cli('user', 'soft-limit', user, 'isolines', 'on')).code).toBe(0);
    expect((await cli('user', 'set-provider', user, 'geocoding', 'mapbox')).code).toBe(0);
    expect((await cli('user', 'set-period-end', user, '2016-10-10')).code).toBe(0);
    const tollgate = new Tollgate({ redis: redis.client() });
    await tollgate.consume({ user, kind: 'geocoding', cost: 7 });

    const view = await json('user', 'show', user);
    expect(view).toMatchObject({
      username: user,
      organization: null,
      geocoding: { quota: 1000, block_price: 1500, monthly_use: 7, hard_limit: true },
      here_isolines: { quota: 0, block_price: null, monthly_use: 0, hard_limit: false },
      mapzen_routing: { quota: 0, monthly_use: 0, hard_limit: true },
      geocoder_provider: 'mapbox',
      period_end_date: '2016-10-10 00:00:00 UTC',
      has_api_key: false,
      credits: null,
    });
    expect(await redis.client().hgetall(`rails:users:${user}`)).toMatchObject({
      geocoding_quota: '1000',
      soft_here_isolines_limit: 'true',
      geocoder_provider: 'mapbox',
      period_end_date: '2016-10-10 00:00:00 UTC',
    });
    const human = await cli('user', 'show', user);
    expect(human.out).toMatch(/geocoding\s+1000\s+7\s+1500\s+true\s+mapbox/);

    expect((await cli('user', 'soft-limit', user, 'isolines', 'off')).code).toBe(0);
    expect(await redis.client().hget(`rails:users:${user}`, 'soft_here_isolines_limit')).toBe('false');
    const usage = await json<Array<{ kind: string; used: number }>>('user', 'usage', user);
    expect(usage.map((u) => [u.kind, u.used])).toEqual([['geocoding', 7], ['isolines', 0], ['routing', 0]]);
  });

  it('creates an org, adds members and shows their usage', async () => {
    const org = fresh('cli-o');
    const alice = fresh('cli-a');
    const bob = fresh('cli-b');
    expect((await cli('org', 'create', org)).code).toBe(0);
    expect((await cli('org', 'create', org)).code).toBe(1); // already exists
    await cli('org', 'set-quota', org, 'geocoding', '100');
    await cli('org', 'set-provider', org, 'routing', 'valhalla');
    await cli('org', 'set-period-end', org, '2016-10-31 00:00:00 +0000');
    for (const user of [alice, bob]) {
      await cli('user', 'create', user);
      expect((await cli('user', 'set-org', user, org)).code).toBe(0);
    }
    const tollgate = new Tollgate({ redis: redis.client() });
    await tollgate.consume({ user: alice, kind: 'geocoding', cost: 3 });
    await tollgate.consume({ user: bob, kind: 'geocoding', cost: 4 });

    const view = await json('org', 'show', org);
    expect(view).toMatchObject({
      orgname: org,
      geocoding: { quota: 100, monthly_use: 7 },
      routing_provider: 'valhalla',
      period_end_date: '2016-10-31 00:00:00 +0000',
      credits: { enabled: false, credits: 0, defaultLimit: -1 },
      members: [alice, bob].sort().map((username) => ({ username, geocoding: username === alice ? 3 : 4 })),
    });
    expect((await json('user', 'show', alice)).geocoding).toMatchObject({ quota: 100, monthly_use: 7 });
    const orgUsage = await json<Array<{ used: number }>>('org', 'usage', org);
    expect(orgUsage[0]!.used).toBe(7);

    expect((await cli('user', 'leave-org', bob)).code).toBe(0);
    expect(await redis.client().hget(`rails:users:${bob}`, 'organization')).toBeNull();
  });

  it('creates an API key, stores only its SHA-256, prints it once, and revokes it', async () => {
    const user = fresh('cli-k');
    await writeUser(redis.client(), user, { geocoding_quota: '1' });
    const created = await cli('user', 'create-key', user);
    expect(created.code).toBe(0);
    const key = /^(tg_[A-Za-z0-9_-]{43})$/m.exec(created.out)?.[1];
    expect(key).toBeDefined();
    const stored = await redis.client().hgetall(`rails:users:${user}`);
    expect(stored['api_key_sha256:main']).toBe(createHash('sha256').update(key!).digest('hex'));
    expect(JSON.stringify(stored)).not.toContain(key!);
    expect((await json('user', 'show', user)).has_api_key).toBe(true);
    expect(await json('user', 'revoke-key', user)).toEqual({ ok: true, user, name: 'main', revoked: true });
    expect(await redis.client().hget(`rails:users:${user}`, 'api_key_sha256:main')).toBeNull();
    expect(await json('user', 'revoke-key', user)).toEqual({ ok: true, user, name: null, revoked: false });
  });
});

describe('tollgate credits commands', () => {
  it('manages balance, budgeting, default limit, allocations and the -1 convention', async () => {
    const org = fresh('cli-co');
    const early = fresh('cli-ce');
    const late = fresh('cli-cl');
    await writeOrg(redis.client(), org, { geocoding_quota: '1000' });
    await writeUser(redis.client(), early, { organization: org });
    await writeUser(redis.client(), late, { geocoding_quota: '0' });

    expect(await json('credits', 'show', org)).toEqual({ orgname: org, enabled: false, credits: 0, defaultLimit: -1 });
    expect(await json('credits', 'set', org, '10')).toMatchObject({ credits: 10 });
    expect(await json('credits', 'add', org, '0.5')).toMatchObject({ credits: 10.5 });
    expect(await json('credits', 'default-limit', org, '2')).toMatchObject({ defaultLimit: -1 }); // off: -1
    expect(await json('credits', 'enable', org)).toMatchObject({ enabled: true, defaultLimit: 2 });

    // Setting the default touched no existing member; a new member gets it.
    expect(await json('credits', 'user', early)).toMatchObject({ assignedCredits: -1, availableCredits: 10.5 });
    await cli('user', 'set-org', late, org);
    expect(await json('credits', 'user', late)).toMatchObject({ assignedCredits: 2, spentCredits: 0, availableCredits: 2 });
    expect(await json('credits', 'default-limit', org, '3')).toMatchObject({ defaultLimit: 3 });
    expect(await json('credits', 'user', late)).toMatchObject({ assignedCredits: 2 });

    expect(await json('credits', 'allocate', early, '1')).toMatchObject({ assignedCredits: 1, availableCredits: 1 });
    const tollgate = new Tollgate({ redis: redis.client() });
    await tollgate.consume({ user: early, kind: 'geocoding', cost: 20 }); // 20 x 0.04 = 0.8 credits
    expect(await json('credits', 'user', early)).toMatchObject({ assignedCredits: 1, spentCredits: 0.8, availableCredits: 0.2 });
    expect((await tollgate.consume({ user: early, kind: 'geocoding', cost: 6 })).reason).toBe('credits_exhausted');

    expect(await json('credits', 'allocate', early)).toMatchObject({ assignedCredits: -1, availableCredits: 9.7 });
    expect(await json('credits', 'allocate', early, '5')).toMatchObject({ assignedCredits: 5, availableCredits: 5 });
    expect(await json('credits', 'deallocate', early)).toMatchObject({ assignedCredits: -1, availableCredits: 9.7 });
    expect(await json('credits', 'disable', org)).toMatchObject({ enabled: false, defaultLimit: -1 });
    const human = await cli('credits', 'show', org);
    expect(human.out).toMatch(new RegExp(`${org}\\s+off\\s+9.7\\s+-1`));
  });

  it('refuses credits for a user outside any org', async () => {
    const user = fresh('cli-n');
    await writeUser(redis.client(), user, { geocoding_quota: '1' });
    const result = await cli('credits', 'allocate', user, '5');
    expect(result.code).toBe(1);
    expect(result.err).toContain('ERR_TOLLGATE_NOT_IN_ORG');
  });
});

describe('bad input changes nothing', () => {
  const cases: Array<[string, (u: string, o: string) => string[], number, RegExp]> = [
    ['negative quota', (u) => ['user', 'set-quota', u, 'geocoding', '-5'], 2, /ERR_TOLLGATE_INVALID_QUOTA/],
    ['non-integer quota', (u) => ['user', 'set-quota', u, 'geocoding', '1.5'], 2, /ERR_TOLLGATE_INVALID_QUOTA/],
    ['unknown quota kind', (u) => ['user', 'set-quota', u, 'teleport', '5'], 2, /^tollgate: unknown quota kind: .* \[ERR_TOLLGATE_UNKNOWN_QUOTA_KIND\]\n$/],
    ['unknown user', () => ['user', 'set-quota', 'nobody-here-x1', 'geocoding', '5'], 1, /ERR_TOLLGATE_UNKNOWN_USER/],
    ['unknown org', () => ['credits', 'set', 'no-org-here-x1', '5'], 1, /ERR_TOLLGATE_UNKNOWN_ORG/],
    ['joining an unknown org', (u) => ['user', 'set-org', u, 'no-org-here-x1'], 1, /ERR_TOLLGATE_UNKNOWN_ORG/],
    ['invalid user name', () => ['user', 'show', 'a:b'], 2, /ERR_TOLLGATE_INVALID_NAME/],
    ['invalid org name', () => ['org', 'set-quota', 'o*', 'geocoding', '1'], 2, /ERR_TOLLGATE_INVALID_NAME/],
    ['negative credits', (_u, o) => ['credits', 'set', o, '-1'], 2, /ERR_TOLLGATE_INVALID_CREDITS/],
    ['credits with 4 decimals', (_u, o) => ['credits', 'add', o, '0.0001'], 2, /ERR_TOLLGATE_INVALID_CREDITS/],
    ['negative allocation', (u) => ['credits', 'allocate', u, '-3'], 2, /ERR_TOLLGATE_INVALID_CREDITS/],
    ['malformed period end date', (u) => ['user', 'set-period-end', u, '2016-02-30'], 2, /ERR_TOLLGATE_INVALID_DATE/],
    ['garbage date', (u) => ['user', 'set-period-end', u, 'tomorrow'], 2, /ERR_TOLLGATE_INVALID_DATE/],
    ['bad provider', (u) => ['user', 'set-provider', u, 'geocoding', 'a b'], 2, /ERR_TOLLGATE_INVALID_PROVIDER/],
    ['malformed time frame', (u) => ['report', '--user', u, '--frame', '3weeks'], 2, /^tollgate: option .* Allowed choices are today, week.* \[ERR_TOLLGATE_INVALID_ARGUMENT\]\n$/],
    ['malformed report date', (u) => ['report', '--user', u, '--from', '2026-13-01'], 2, /ERR_TOLLGATE_INVALID_DATE/],
    ['two report targets', (u, o) => ['report', '--user', u, '--org', o], 2, /exactly one of/],
    ['unknown command', () => ['teleport'], 2, /^tollgate: unknown command 'teleport'.* \[ERR_TOLLGATE_INVALID_ARGUMENT\]\n$/],
    ['missing argument', () => ['user', 'show'], 2, /^tollgate: missing required argument 'user' \[ERR_TOLLGATE_INVALID_ARGUMENT\]\n$/],
    ['unknown option', (u) => ['user', 'show', u, '--colour'], 2, /^tollgate: unknown option '--colour' \[ERR_TOLLGATE_INVALID_ARGUMENT\]\n$/],
    ['ISO date with an offset', (u) => ['user', 'set-period-end', u, '2016-10-10T00:00:00+02:00'], 2, /ERR_TOLLGATE_INVALID_DATE/],
    ['month without the cycle frame', (u) => ['report', '--user', u, '--frame', 'week', '--month', '202601'], 2, /--month goes with the cycle frame/],
    ['malformed month', (u) => ['report', '--user', u, '--month', '2026-01'], 2, /month must be YYYYMM/],
    ['key name with a colon', (u) => ['user', 'create-key', u, 'a:b'], 2, /ERR_TOLLGATE_INVALID_NAME/],
    ['reserved key name', (u) => ['user', 'create-key', u, 'map_key'], 2, /reserved/],
    ['rotating a key that does not exist', (u) => ['user', 'rotate-key', u, 'ghost'], 1, /ERR_TOLLGATE_UNKNOWN_API_KEY/],
    ['zero units credited back', (u) => ['user', 'adjust-usage', u, 'geocoding', '0'], 2, /ERR_TOLLGATE_INVALID_COST/],
    ['crediting back more than was used', (u) => ['user', 'adjust-usage', u, 'geocoding', '5'], 1, /ERR_TOLLGATE_ADJUSTMENT_TOO_LARGE/],
    ['deleting an org with members', (_u, o) => ['org', 'delete', o], 1, /ERR_TOLLGATE_HAS_MEMBERS/],
    ['negative block price', (u) => ['user', 'set-block-price', u, 'geocoding', '-1'], 2, /ERR_TOLLGATE_INVALID_QUOTA/],
  ];
  it.each(cases)('%s', async (_name, args, code, message) => {
    const org = fresh('bad-o');
    const user = fresh('bad-u');
    await writeOrg(redis.client(), org, { geocoding_quota: '10', credits_enabled: 'true', credits_balance_millicredits: '1000' });
    await writeUser(redis.client(), user, { organization: org, geocoding_quota: '3' });
    const before = await snapshot(redis.client(), [user, org, 'nobody-here-x1', 'no-org-here-x1']);
    const result = await cli(...args(user, org));
    expect(result.code).toBe(code);
    expect(result.err).toMatch(message);
    expect(result.out).toBe('');
    expect(await snapshot(redis.client(), [user, org, 'nobody-here-x1', 'no-org-here-x1'])).toEqual(before);
  });

  it('exits 1 with a clear message when Redis does not answer', async () => {
    const out = sink();
    const err = sink();
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    const code = await runCli(['--timeout-ms', '300', 'user', 'show', 'someone'], {
      stdout: out.stream,
      stderr: err.stream,
      env: { REDIS_URL: 'redis://127.0.0.1:1' },
    });
    expect(code).toBe(1);
    expect(err.text()).toMatch(/ERR_TOLLGATE_REDIS_UNAVAILABLE/);
  });

  it('prints help with exit 0 when asked', async () => {
    const result = await cli('--help');
    expect(result.code).toBe(0);
    expect(result.out).toContain('credits');
  });
});

describe('the tollgate executable', () => {
  it('runs as a process with REDIS_URL and sets its exit code', async () => {
    const user = fresh('bin-u');
    await writeUser(redis.client(), user, { geocoding_quota: '42' });
    const run = (args: string[]): Promise<{ code: number | null; out: string; err: string }> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
          env: { ...process.env, REDIS_URL: redis.url() },
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, out, err }));
      });
    const ok = await run(['--json', 'user', 'show', user]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).geocoding.quota).toBe(42);
    const bad = await run(['user', 'set-quota', user, 'geocoding', '-1']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('ERR_TOLLGATE_INVALID_QUOTA');
  });
});

describe('tollgate user repair-usage', () => {
  it('lists a poisoned score, removes it with --apply, and the user is served again', async () => {
    const user = fresh('cli-u');
    await writeUser(redis.client(), user, { geocoding_quota: '100' });
    const month = new Date().toISOString().slice(0, 7).replace('-', '');
    const day = new Date().toISOString().slice(8, 10);
    const key = `user:${user}:geocoder_here:empty_responses:${month}`;
    await redis.client().zadd(key, '-1000000', day);
    const tollgate = new Tollgate({ redis: redis.client() });
    await expect(tollgate.consume({ user, kind: 'geocoding', cost: 1000 })).rejects.toMatchObject({ code: 'ERR_TOLLGATE_INVALID_CONFIG' });

    const listed = await cli('user', 'repair-usage', user);
    expect(listed.code).toBe(0);
    expect(listed.out).toContain(`${key} day ${day}: -1000000 (negative)`);
    expect(listed.out).toContain('--apply');
    expect(await redis.client().zscore(key, day)).toBe('-1000000');

    const applied = await json<{ removed: unknown[] }>('user', 'repair-usage', user, '--apply');
    expect(applied.removed).toHaveLength(1);
    expect(await redis.client().zscore(key, day)).toBeNull();
    expect(await tollgate.consume({ user, kind: 'geocoding', cost: 100 })).toMatchObject({ allowed: true, used: 100 });
    expect((await cli('user', 'repair-usage', user)).out).toContain('no garbled usage scores');
  });
});
