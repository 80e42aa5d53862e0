// The dependency rules (.dependency-cruiser.cjs, run by `npm test` as `npm run depcheck`) fire: each is broken once in a scratch tree.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const configPath = join(root, '.dependency-cruiser.cjs');
const config = createRequire(import.meta.url)(configPath) as { forbidden: Array<{ name: string }> };

/** A tree laid out like the repository, where every arrow points the wrong way once. */
const BROKEN_TREE: Record<string, string> = {
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', paths: { tollgate: ['./src/index.ts'] } } }),
  'package.json': JSON.stringify({ name: 'scratch', type: 'module' }),
  'src/index.ts': "export { a } from './core/a.js';",
  'src/core/a.ts': "import { b } from '../redis/b.js';\nexport const a = b;",
  'src/core/helper.ts': "import { t } from '../../test/t.js';\nexport const helper = t;",
  'src/redis/b.ts': "import { client } from '../tollgate.js';\nexport const b = client;",
  'src/tollgate.ts': "import { h } from './http/h.js';\nexport const client = h;",
  'src/http/h.ts': "import { c } from '../cli/c.js';\nexport const h = c;",
  'src/observability/o.ts': "import { h } from '../http/h.js';\nexport const o = h;",
  'src/admin/ad.ts': "import { c } from '../cli/c.js';\nexport const ad = c;",
  'src/cli/c.ts': "import { b } from '../redis/b.js';\nimport missing from 'no-such-package';\nexport const c = [b, missing];",
  'demo/src/d.ts': "import { a } from 'tollgate';\nimport { helper } from '../../src/core/helper.js';\nexport const d = [a, helper];",
  'test/t.ts': 'export const t = 1;',
};

/** Rules the scratch tree cannot break: they need installed packages (real node_modules). */
const NEEDS_PACKAGES = ['only-redis-imports-ioredis', 'library-declares-its-packages'];

const scratch = mkdtempSync(join(tmpdir(), 'tollgate-depcruise-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('dependency rules', () => {
  it('report every rule broken in a tree where each arrow points the wrong way', async () => {
    for (const [path, text] of Object.entries(BROKEN_TREE)) {
      mkdirSync(dirname(join(scratch, path)), { recursive: true });
      writeFileSync(join(scratch, path), text);
    }
    const depcruise = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
    // With the JSON reporter the exit code is not the verdict; the summary is.
    const { stdout: output } = await run(process.execPath, [depcruise, 'src', 'demo/src', '--config', configPath, '--output-type', 'json'], {
      cwd: scratch,
      maxBuffer: 16 * 1024 * 1024,
    });
    const result = JSON.parse(output) as { summary: { violations: Array<{ rule: { name: string }; from: string; to: string }> } };
    const broken = new Set(result.summary.violations.map((violation) => violation.rule.name));
    const expected = config.forbidden.map((rule) => rule.name).filter((name) => !NEEDS_PACKAGES.includes(name));
    expect([...broken].sort()).toEqual(expected.sort());
    // The demo's own import of 'tollgate' (the package entry) is allowed; the one behind it is not.
    const demo = result.summary.violations.filter((violation) => violation.from === 'demo/src/d.ts');
    expect(demo.map((violation) => [violation.rule.name, violation.to])).toEqual([['demo-uses-the-package-entry', 'src/core/helper.ts']]);
  });
});
