// Steady consume load for tests that change things under it (moves between pools, slot moves): workers, and what they were admitted.
import type { Tollgate } from '../../src/index.js';

/** A running load: `stop()` ends it once every worker's call in flight has answered, and resolves with the units admitted. */
export interface ConsumeLoad {
  stop(): Promise<number>;
}

/**
 * `workers` loops consuming 1 geocoding unit for `user` until stopped. A call that throws (it
 * waited out `maxAttempts` during a move, or Redis was away) charged nothing and is not counted.
 */
export function consumeLoad(tollgate: Tollgate, user: string, workers = 8): ConsumeLoad {
  let admitted = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped) {
      try {
        if ((await tollgate.consume({ user, kind: 'geocoding', cost: 1 })).allowed) admitted += 1;
      } catch {
        // nothing was charged
      }
    }
  };
  const running = Array.from({ length: workers }, () => worker());
  return {
    async stop() {
      stopped = true;
      await Promise.all(running);
      return admitted;
    },
  };
}
