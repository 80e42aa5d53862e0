// Entry point of `npm start`: the demo service configured from the environment, stopped cleanly on SIGTERM/SIGINT.
import { redisTargetFromEnv } from 'tollgate';
import { parseFailOpen, startDemo } from './service.js';

const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error('PORT must be an integer from 0 to 65535');
  process.exit(1);
}

try {
  const service = await startDemo({
    port,
    host: process.env.HOST ?? '127.0.0.1',
    // REDIS_CLUSTER, REDIS_SENTINELS + REDIS_SENTINEL_NAME, or REDIS_URL (docs/cluster.md).
    redisTarget: redisTargetFromEnv(process.env),
    redisDataDir: process.env.TOLLGATE_DEMO_REDIS_DIR,
    failOpen: parseFailOpen(process.env.TOLLGATE_FAIL_OPEN),
    adminToken: process.env.TOLLGATE_ADMIN_TOKEN,
    keyLayout: process.env.TOLLGATE_KEY_LAYOUT,
    log: (message) => console.log(message),
  });
  const stop = (signal: NodeJS.Signals): void => {
    console.log(`${signal}: finishing in-flight requests, settling them, closing Redis...`);
    service.shutdown().then(
      () => {
        console.log('Stopped.');
        process.exit(0);
      },
      (error: unknown) => {
        console.error('Shutdown failed:', error instanceof Error ? error.message : error);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (error) {
  console.error(`The demo could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
