// A real pino logger (Tollgate's own settings) whose JSON lines are kept in memory for assertions.
import { createLogger } from '../../src/observability/logging.js';

/** One logged line, parsed. */
export type LogLine = Record<string, unknown> & { level: string; msg: string; event?: string };

/** A logger writing through the production pino settings into memory; `raw` is the exact text written. */
export function captureLogs(level = 'debug'): { logger: ReturnType<typeof createLogger>; lines: () => LogLine[]; raw: () => string } {
  let text = '';
  const logger = createLogger({ level, destination: { write: (chunk: string) => void (text += chunk) } });
  return {
    logger,
    raw: () => text,
    lines: () => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as LogLine),
  };
}
