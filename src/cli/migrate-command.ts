// `tollgate migrate --to cluster|carto`: copies the keyspace into the other key layout, with a progress bar on a terminal and a summary.
import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { ERROR_CODES, InvalidInputError } from '../core/errors.js';
import { KEY_LAYOUT_NAMES, type KeyLayoutName } from '../core/layout.js';
import { MIGRATED_KINDS, MigrationConflictError, SourceChangedError, type MigrationReport } from '../core/migration.js';
import { parseHostPorts, redisTargetFromEnv, singleTarget, type RedisTarget } from '../core/redis-target.js';
import { runMigration, type MigrationPhase, type MigrationProgress } from '../admin/migration.js';

/** What the command needs of the program's io (program.ts's CliIo). */
interface MigrateIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The program's global options the command reads. */
interface GlobalOptions {
  redis?: string;
  json?: boolean;
  timeoutMs?: string;
}

interface MigrateOptions {
  to: KeyLayoutName;
  target?: string;
  targetCluster?: string;
  dryRun?: boolean;
}

/** The other commands' default source (program.ts). */
const DEFAULT_SOURCE_URL = 'redis://127.0.0.1:6379';

const PHASE_NAMES: Readonly<Record<MigrationPhase, string>> = {
  read: 'read source',
  check: 'check target',
  write: 'write target',
  verify: 'verify source',
};

/** Where the keys go: exactly one of `--target` and `--target-cluster`. */
function targetOf(options: MigrateOptions): RedisTarget {
  const given = [options.target, options.targetCluster].filter((value) => value !== undefined);
  if (given.length !== 1) {
    throw new InvalidInputError(ERROR_CODES.invalidArgument, 'give exactly one of --target <redis-url> and --target-cluster <host:port[,host:port...]>');
  }
  if (options.target !== undefined) return singleTarget('--target', options.target);
  return { kind: 'cluster', nodes: parseHostPorts('--target-cluster', options.targetCluster as string) };
}

/** Where the keys are: the Redis every other command uses. */
function sourceOf(globals: GlobalOptions, env: MigrateIo['env']): RedisTarget {
  if (globals.redis !== undefined) return singleTarget('--redis', globals.redis);
  return redisTargetFromEnv(env) ?? singleTarget('--redis', DEFAULT_SOURCE_URL);
}

const rate = (done: number, sinceMs: number): number => Math.round(done / Math.max(0.001, (performance.now() - sinceMs) / 1000));

/**
 * Progress on stderr: a cli-progress bar per phase on a terminal; otherwise a plain line when a
 * phase ends and at most every 2 s within one.
 */
function progressReporter(stderr: Writable): { update: (progress: MigrationProgress) => void; stop: () => void } {
  const tty = (stderr as { isTTY?: boolean }).isTTY === true;
  let phase: MigrationPhase | null = null;
  let last: MigrationProgress | null = null;
  let phaseStartMs = 0;
  let lineMs = 0;
  let bar: cliProgress.SingleBar | null = null;
  const line = (progress: MigrationProgress): void => {
    stderr.write(`tollgate: migrate: ${PHASE_NAMES[progress.phase]}: ${progress.done}/${progress.total} keys, ${rate(progress.done, phaseStartMs)} keys/s\n`);
    lineMs = performance.now();
  };
  const endPhase = (): void => {
    if (bar !== null) bar.stop();
    else if (last !== null) line(last);
    bar = null;
  };
  return {
    update(progress) {
      if (progress.phase !== phase) {
        endPhase();
        phase = progress.phase;
        phaseStartMs = performance.now();
        lineMs = phaseStartMs;
        if (tty) {
          bar = new cliProgress.SingleBar(
            {
              stream: stderr as unknown as NodeJS.WritableStream,
              format: `${PHASE_NAMES[progress.phase].padEnd(13)} [{bar}] {value}/{total} keys | {rate} keys/s | {duration_formatted}`,
              hideCursor: true,
              etaBuffer: 50,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(progress.total, progress.done, { rate: 0 });
        }
      }
      last = progress;
      if (bar !== null) {
        bar.setTotal(progress.total);
        bar.update(progress.done, { rate: rate(progress.done, phaseStartMs) });
      } else if (performance.now() - lineMs >= 2000) line(progress);
    },
    stop: endPhase,
  };
}

const pad = (value: string | number, width: number): string => String(value).padStart(width);

/** The report for a person. */
export function formatMigrationReport(report: MigrationReport): string {
  const lines = [
    `migrate to the ${report.to} layout${report.dryRun ? ' (dry run: nothing written)' : ''}: ${report.sourceKeys} source keys`,
    `${'kind'.padEnd(12)}${pad('write', 10)}${pad('equal', 10)}${pad('conflict', 10)}`,
  ];
  for (const kind of MIGRATED_KINDS) {
    const counts = report.kinds[kind];
    lines.push(`${kind.padEnd(12)}${pad(counts.write, 10)}${pad(counts.equal, 10)}${pad(counts.conflict, 10)}`);
  }
  if (report.conflicts.count > 0) {
    lines.push(`conflicts: ${report.conflicts.count} target keys exist and differ (first ${report.conflicts.first.length}):`);
    lines.push(...report.conflicts.first.map((key) => `  ${key}`));
  }
  lines.push(`left out: ${report.leftOut.reservations} reservation buckets, ${report.leftOut.journal} journal markers (short-lived, never copied)`);
  if (report.unmapped.count > 0) {
    lines.push(`not copied: ${report.unmapped.count} keys (first ${report.unmapped.first.length}):`);
    lines.push(...report.unmapped.first.map(({ key, reason }) => `  ${key}: ${reason}`));
  }
  if (report.otherKeys > 0) lines.push(`other applications' keys, left alone: ${report.otherKeys}`);
  if (!report.dryRun) {
    lines.push(`written: ${report.written} keys${report.expired > 0 ? `; ${report.expired} request ids expired before they were written` : ''}`);
    if (report.verified > 0 || report.written > 0) lines.push(`source unchanged while copied: ${report.verified} usage counters and credit ledgers read again`);
  }
  lines.push(`took ${(report.elapsedMs / 1000).toFixed(1)} s`);
  return lines.join('\n');
}

/** Adds `migrate` to the program (its global options give the source, `--redis`, `--json`, `--timeout-ms`). */
export function registerMigrateCommand(program: Command, io: MigrateIo): void {
  program
    .command('migrate')
    .description('copy the keyspace into the other key layout: CARTO -> cluster (--to cluster) or back (--to carto); docs/cluster.md')
    .addOption(new Option('--to <layout>', 'the layout to write').choices([...KEY_LAYOUT_NAMES]).makeOptionMandatory())
    .option('--target <redis-url>', 'write into this single Redis (redis:// or rediss:// URL)')
    .option('--target-cluster <host:port,...>', 'write into the Redis Cluster seeded by these nodes (--to cluster only)')
    .option('--dry-run', 'read and compare only: print what would be written, skipped and in conflict; write nothing')
    .action(async (options: MigrateOptions) => {
      const globals = program.opts<GlobalOptions>();
      const target = targetOf(options);
      const source = sourceOf(globals, io.env);
      const progress = progressReporter(io.stderr);
      const print = (report: MigrationReport, failure?: string): void => {
        const body = { ok: failure === undefined, ...(failure === undefined ? {} : { code: failure }), ...report };
        io.stdout.write(globals.json === true ? `${JSON.stringify(body, null, 2)}\n` : `${formatMigrationReport(report)}\n`);
      };
      let report: MigrationReport;
      try {
        report = await runMigration({
          source,
          target,
          to: options.to,
          dryRun: options.dryRun === true,
          timeoutMs: Number(globals.timeoutMs ?? '5000'),
          onProgress: progress.update,
        });
      } catch (error) {
        progress.stop();
        if (error instanceof MigrationConflictError || error instanceof SourceChangedError) print(error.report, error.code);
        throw error;
      }
      progress.stop();
      // A dry run that found conflicts says so in its exit code too: the real run would refuse.
      if (report.dryRun && report.conflicts.count > 0) {
        const refusal = new MigrationConflictError(report);
        print(report, refusal.code);
        throw refusal;
      }
      print(report);
    });
}
