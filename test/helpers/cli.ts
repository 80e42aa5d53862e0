// Runs the tollgate command in-process against a test Redis and captures what it prints.
import { expect } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { sink } from './streams.js';

/** What one run of the command did. */
export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** `cli(...args)` runs `tollgate args` with REDIS_URL from `url()`; `json(...args)` runs it with --json, expects success, parses stdout. */
export function cliFor(url: () => string): {
  cli: (...args: string[]) => Promise<CliRun>;
  json: <T = Record<string, any>>(...args: string[]) => Promise<T>;
} {
  const cli = async (...args: string[]): Promise<CliRun> => {
    const out = sink();
    const err = sink();
    const code = await runCli(args, { stdout: out.stream, stderr: err.stream, env: { REDIS_URL: url() } });
    return { code, out: out.text(), err: err.text() };
  };
  const json = async <T = Record<string, any>>(...args: string[]): Promise<T> => {
    const result = await cli('--json', ...args);
    expect([result.code, result.err]).toEqual([0, '']);
    return JSON.parse(result.out) as T;
  };
  return { cli, json };
}
