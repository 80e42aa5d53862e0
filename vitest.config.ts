// Vitest configuration: every test file gets its own Redis (see test/helpers/redis.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // `tollgate` (as the demo imports it) is the source, as in tsconfig.json's paths: no build needed.
    alias: { tollgate: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // With REDIS_URL every file shares one server: run files one at a time so a test's
    // keyspace snapshot never sees another file's keys appear.
    fileParallelism: !process.env.REDIS_URL,
  },
});
