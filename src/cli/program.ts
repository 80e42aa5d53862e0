// The `tollgate` command: commander program over the shared admin operations, runnable in-process with injected streams.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Argument, Command, CommanderError, Option } from 'commander';
import { ERROR_CODES, InvalidInputError, RedisUnavailableError, TollgateError } from '../core/errors.js';
import { QUOTA_KINDS, type QuotaKind } from '../core/quota-kinds.js';
import { keyLayoutFromEnv, redisTargetFromEnv } from '../core/redis-target.js';
import { Tollgate } from '../tollgate.js';
import { FRAME_NAMES, parseInput, values } from '../admin/inputs.js';
import { AdminOperations, DEFAULT_NEW_KEY_NAME, DEFAULT_OVERLAP_SECONDS, type AdminTarget, type Warnings } from '../admin/operations.js';
import { serverNowMs } from '../admin/router.js';
import {
  OutputClosedError,
  planDates,
  planReport,
  reportAnchorDay,
  reportRows,
  sortedRows,
  withTotals,
  writeReport,
  type ReportFormat,
  type ReportRow,
  type ReportTarget,
} from '../admin/reports.js';
import { registerMigrateCommand } from './migrate-command.js';
import { formatApiKeys, formatOrg, formatOrgCredits, formatUsage, formatUser, formatUserCredits } from './format.js';

/** Where the command reads its environment and writes its output. */
export interface CliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** `REDIS_URL`, `REDIS_CLUSTER`, `REDIS_SENTINELS`, `REDIS_SENTINEL_NAME` and `TOLLGATE_KEY_LAYOUT` are read from here. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Epoch ms "now" for reports; default the Redis server's clock. Meant for tests. */
  readonly clock?: () => number;
}

/** Exit codes: 0 success, 1 a runtime failure (unknown user, Redis down), 2 a usage error (bad arguments). */
export const EXIT = Object.freeze({ ok: 0, runtime: 1, usage: 2 });

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

interface GlobalOptions {
  redis?: string;
  keyLayout?: string;
  json?: boolean;
  timeoutMs?: string;
}

/** Lazily opened connection, shared by one command run and closed after it. */
class Session {
  #tollgate: Tollgate | undefined;
  #ops: AdminOperations | undefined;

  constructor(readonly options: () => GlobalOptions, readonly env: CliIo['env']) {}

  get ops(): AdminOperations {
    if (this.#ops === undefined) {
      const { redis, timeoutMs, keyLayout } = this.options();
      const timeout = timeoutMs === undefined ? 5000 : Number(timeoutMs);
      // --redis wins; else REDIS_CLUSTER, REDIS_SENTINELS + REDIS_SENTINEL_NAME or REDIS_URL; else the default URL.
      const target = redis ?? redisTargetFromEnv(this.env) ?? DEFAULT_REDIS_URL;
      // --key-layout wins; else TOLLGATE_KEY_LAYOUT; else cluster for a Redis Cluster, carto otherwise.
      const layout = keyLayoutFromEnv(this.env, target, keyLayout);
      this.#tollgate = new Tollgate({ redis: target, keyLayout: layout, timeoutMs: Math.min(60_000, timeout) });
      this.#ops = new AdminOperations(this.#tollgate, { timeoutMs: timeout });
    }
    return this.#ops;
  }

  async close(): Promise<void> {
    await this.#tollgate?.close();
  }
}

/** A `<kind>` argument read by the shared kind parser: `isolines` or the block name `here_isolines`. */
const kindArgument = (): Argument =>
  new Argument('<kind>', `quota kind: ${QUOTA_KINDS.join(', ')} (or here_isolines, mapzen_routing)`).argParser((value) =>
    parseInput(values.kind, value, 'quota kind'),
  );

/** The package version, read once from the package.json beside src/ or dist/src/. */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth += 1) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (parsed.name === 'tollgate' && typeof parsed.version === 'string') return parsed.version;
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

/**
 * Commander's own messages (`error: unknown option ...`) in the documented form,
 * `tollgate: <message> [ERR_TOLLGATE_INVALID_ARGUMENT]`, on one line.
 */
export function commanderMessage(text: string): string {
  const message = text.replace(/^error:\s*/i, '').replace(/\s*\n\s*/g, ' ').trim();
  return `tollgate: ${message} [${ERROR_CODES.invalidArgument}]\n`;
}

/**
 * Builds the `tollgate` program writing to `io`. Commander is set never to call
 * process.exit: {@link runCli} turns its errors into exit codes.
 */
function createProgram(io: CliIo, session: Session): Command {
  const program = new Command('tollgate')
    .description('Operate Tollgate quotas, API keys and credit budgets on Redis (CARTO or cluster key layout).')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--redis <url>', `Redis URL (default: $REDIS_SENTINELS with $REDIS_SENTINEL_NAME, or $REDIS_URL, else ${DEFAULT_REDIS_URL})`)
    .addOption(
      new Option('--key-layout <layout>', 'key layout: carto or cluster (default: $TOLLGATE_KEY_LAYOUT, else cluster on a Redis Cluster, carto otherwise)').choices([
        'carto',
        'cluster',
      ]),
    )
    .option('--json', 'print JSON instead of tables')
    .addOption(new Option('--timeout-ms <ms>', 'bound on each Redis call').default('5000').argParser(positiveMs))
    .exitOverride()
    // Set before any sub-command is added: commander copies these settings into each of them.
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
      outputError: (text, write) => write(commanderMessage(text)),
    })
    .showSuggestionAfterError();

  const json = (): boolean => Boolean(program.opts<GlobalOptions>().json);
  const print = (value: unknown, human: () => string): void => {
    io.stdout.write(json() ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
  };
  const warn = (warnings: Warnings): void => {
    for (const warning of warnings) io.stderr.write(`tollgate: warning: ${warning}\n`);
  };
  /** Prints a change's result; its warnings go to stderr, and into the JSON as `warnings` too. */
  const done = (value: Record<string, unknown>, message: string, warnings: Warnings = []): void => {
    warn(warnings);
    print({ ok: true, ...value, ...(warnings.length === 0 ? {} : { warnings }) }, () => message);
  };

  const user = program.command('user').description('show and change users (rails:users:<name>)');
  user.command('create <user>').description('create a user hash, every quota 0').action(async (name: string) => {
    await session.ops.create({ user: name });
    done({ user: name }, `created user ${name}`);
  });
  user.command('show <user>').description('the CARTO user view: quotas, use, limits, providers, API keys (masked), credits').action(async (name: string) => {
    const view = await session.ops.showUser(name);
    print(view, () => formatUser(view));
  });
  user.command('usage <user>').description("the user's own counters this billing cycle").action(async (name: string) => {
    const usage = await session.ops.usage({ user: name });
    print(usage, () => formatUsage(usage));
  });
  user
    .command('soft-limit')
    .description('turn the soft limit of one kind on (no hard limit) or off')
    .argument('<user>')
    .addArgument(kindArgument())
    .addArgument(new Argument('<state>', 'on or off').choices(['on', 'off']))
    .action(async (name: string, kind: QuotaKind, state: string) => {
      const warnings = await session.ops.setSoftLimit(name, kind, state === 'on');
      done({ user: name, kind, softLimit: state === 'on' }, `soft limit of ${kind} for ${name}: ${state}`, warnings);
    });
  user.command('set-org <user> <org>').description('put the user in an org (pooled quotas, credit budget)').action(async (name: string, org: string) => {
    const warnings = await session.ops.setOrganization(name, org);
    done({ user: name, org }, `${name} is now a member of ${org}`, warnings);
  });
  user.command('leave-org <user>').description('take the user out of its org').action(async (name: string) => {
    await session.ops.setOrganization(name, null);
    done({ user: name, org: null }, `${name} is in no org`);
  });
  user
    .command('create-key <user> [name]')
    .description(`create a named API key (default name ${DEFAULT_NEW_KEY_NAME}); printed once, only its SHA-256 is stored; other keys keep working`)
    .action(async (name: string, keyName: string | undefined) => {
      const created = await session.ops.createApiKey(name, keyName ?? DEFAULT_NEW_KEY_NAME);
      print(created, () => `API key ${created.name} for ${name} (shown once, store it now):\n${created.apiKey}`);
    });
  user.command('keys <user>').description("the user's API keys, masked: name, form, created, expires, state").action(async (name: string) => {
    const keys = await session.ops.listApiKeys(name);
    print(keys, () => formatApiKeys(keys));
  });
  user
    .command('revoke-key <user> [name]')
    .description('revoke one key (map_key too); without a name, the only key the user has')
    .action(async (name: string, keyName: string | undefined) => {
      const result = await session.ops.revokeApiKey(name, keyName);
      done({ user: name, ...result }, result.revoked ? `revoked key ${result.name} of ${name}` : `${name} had no such key`);
    });
  user
    .command('rotate-key <user> <name>')
    .description('a new key replaces <name>; the old one keeps working for the overlap (server clock)')
    .option('--new-name <name>', 'name of the new key (default: the same name; the old key becomes <name>-prev)')
    .addOption(new Option('--overlap <seconds>', 'how long the old key still works').default(String(DEFAULT_OVERLAP_SECONDS)))
    .action(async (name: string, keyName: string, options: { newName?: string; overlap: string }) => {
      const rotated = await session.ops.rotateApiKey(name, keyName, {
        overlapSeconds: options.overlap,
        ...(options.newName === undefined ? {} : { newName: options.newName }),
      });
      print(rotated, () =>
        `API key ${rotated.name} for ${name} (shown once, store it now):\n${rotated.apiKey}\n` +
        `the old key (now ${rotated.previous}) works until ${rotated.previousExpiresAt}`,
      );
    });
  user
    .command('adjust-usage')
    .description("credit back units of the user's usage today (and its org pool's), audited in tollgate:adjustments:<user>")
    .argument('<user>')
    .addArgument(kindArgument())
    .argument('<units>', 'a positive integer')
    .option('--reason <text>', 'why, kept in the audit entry')
    .action(async (name: string, kind: QuotaKind, units: string, options: { reason?: string }) => {
      const adjustment = await session.ops.adjustUsage(name, kind, units, { ...(options.reason === undefined ? {} : { reason: options.reason }), actor: 'cli' });
      print(adjustment, () => `credited back ${adjustment.units} ${kind} units of ${name} on ${adjustment.at.slice(0, 10)}: ${adjustment.keys.join(', ')}`);
    });
  user.command('adjustments <user>').description("the user's newest usage adjustments (audit)").action(async (name: string) => {
    const entries = await session.ops.adjustments(name);
    print(entries, () => (entries.length === 0 ? 'no adjustments' : entries.map((entry) => JSON.stringify(entry)).join('\n')));
  });

  const org = program.command('org').description('show and change orgs (rails:orgs:<name>)');
  org.command('create <org>').description('create an org hash, budgeting off').action(async (name: string) => {
    await session.ops.create({ org: name });
    done({ org: name }, `created org ${name}`);
  });
  org.command('show <org>').description("the org's quotas and pooled use, credits, and each member's use").action(async (name: string) => {
    const view = await session.ops.showOrg(name);
    print(view, () => formatOrg(view));
  });
  org.command('usage <org>').description("the org's pooled counters this billing cycle").action(async (name: string) => {
    const usage = await session.ops.usage({ org: name });
    print(usage, () => formatUsage(usage));
  });

  for (const [parent, role] of [[user, 'user'], [org, 'org']] as const) {
    const target = (name: string): AdminTarget => (role === 'user' ? { user: name } : { org: name });
    parent
      .command(`repair-usage <${role}>`)
      .description(`list the ${role}'s usage scores no decision can use (negative, fractional, past 2^53 - 1); --apply removes them`)
      .option('--apply', 'remove each one (its day then counts 0), only if it still holds what was found')
      .action(async (name: string, options: { apply?: boolean }) => {
        const repair = await session.ops.repairUsage(target(name), { apply: options.apply === true });
        print(repair, () => {
          if (repair.found.length === 0) return `no garbled usage scores for ${role} ${name}`;
          const lines = repair.found.map((found) => `${found.key} day ${found.member}: ${found.score} (${found.problem})`);
          if (options.apply !== true) lines.push('run again with --apply to remove them');
          else lines.push(`removed ${repair.removed.length}, changed since found and left alone ${repair.skipped.length}`);
          return lines.join('\n');
        });
      });
    parent
      .command('list')
      .description(`${role} names, found with SCAN; every page unless --cursor is given`)
      .option('--cursor <cursor>', 'continue from a cursor a previous page printed (one page only)')
      .addOption(new Option('--count <n>', 'keys per SCAN step').default('1000'))
      .action(async (options: { cursor?: string; count: string }) => {
        if (options.cursor !== undefined) {
          const page = await session.ops.list(role, options.cursor, options.count);
          print(page, () => [...page.names, ...(page.cursor === '0' ? [] : [`(more: --cursor ${page.cursor})`])].join('\n'));
          return;
        }
        const names: string[] = [];
        let cursor = '0';
        do {
          const page = await session.ops.list(role, cursor, options.count);
          if (!json()) for (const name of page.names) io.stdout.write(`${name}\n`);
          else names.push(...page.names);
          cursor = page.cursor;
        } while (cursor !== '0');
        if (json()) print({ names: names.sort(), cursor: '0' }, () => '');
      });
    parent
      .command(`delete <${role}>`)
      .description(
        role === 'user'
          ? 'delete the user hash; refused while usage keys exist unless --with-usage'
          : 'delete the org hash; refused while it has members, or usage keys unless --with-usage',
      )
      .option('--with-usage', 'also delete its usage and credit-ledger keys')
      .action(async (name: string, options: { withUsage?: boolean }) => {
        const deleted = await session.ops.delete(target(name), { withUsage: options.withUsage === true });
        done({ ...deleted }, `deleted ${deleted.deleted}${deleted.usageKeys > 0 ? ` and ${deleted.usageKeys} usage keys` : ''}`);
      });
    parent
      .command('set-quota')
      .description('set the quota of one kind (units per billing cycle)')
      .argument(`<${role}>`)
      .addArgument(kindArgument())
      .argument('<quota>', 'a non-negative integer')
      .action(async (name: string, kind: QuotaKind, quota: string) => {
        const warnings = await session.ops.setQuota(target(name), kind, quota);
        done({ [role]: name, kind, quota: Number(quota) }, `${kind} quota of ${role} ${name}: ${quota}`, warnings);
      });
    parent
      .command('set-block-price')
      .description('set the price of a block of 1000 units past the quota, in cents; "none" removes it')
      .argument(`<${role}>`)
      .addArgument(kindArgument())
      .argument('<cents>', 'a non-negative integer, or none')
      .action(async (name: string, kind: QuotaKind, cents: string) => {
        const warnings = await session.ops.setBlockPrice(target(name), kind, cents === 'none' ? null : cents);
        done({ [role]: name, kind, block_price: cents === 'none' ? null : Number(cents) }, `${kind} block price of ${role} ${name}: ${cents}`, warnings);
      });
    parent
      .command('set-provider')
      .description('set the provider of one kind (names the service_type of usage keys)')
      .argument(`<${role}>`)
      .addArgument(kindArgument())
      .argument('<provider>')
      .action(async (name: string, kind: QuotaKind, provider: string) => {
        const warnings = await session.ops.setProvider(target(name), kind, provider);
        done({ [role]: name, kind, provider }, `${kind} provider of ${role} ${name}: ${provider}`, warnings);
      });
    parent
      .command('set-period-end')
      .description('set period_end_date; its day of month starts each billing cycle')
      .argument(`<${role}>`)
      .argument('<date>', 'YYYY-MM-DD, 2016-10-10T00:00:00Z or "2016-10-10 00:00:00 UTC"')
      .action(async (name: string, date: string) => {
        const changed = await session.ops.setPeriodEndDate(target(name), date);
        const stored = changed.result.period_end_date;
        done({ [role]: name, period_end_date: stored }, `period_end_date of ${role} ${name}: ${stored}`, changed.warnings);
      });
  }
  const credits = program.command('credits').description('credit budgets (SPEC 6); amounts in credits, up to 3 decimals');
  credits.command('show <org>').description("the org's balance, budgeting on/off and default limit").action(async (name: string) => {
    const result = await session.ops.orgCredits(name);
    print(result, () => formatOrgCredits(result));
  });
  credits.command('set <org> <credits>').description("set the org's balance").action(async (name: string, amount: string) => {
    const result = await session.ops.setOrgCredits(name, amount);
    print(result, () => formatOrgCredits(result));
  });
  credits.command('add <org> <credits>').description("add to the org's balance").action(async (name: string, amount: string) => {
    const result = await session.ops.addOrgCredits(name, amount);
    print(result, () => formatOrgCredits(result));
  });
  credits.command('enable <org>').description('turn budgeting on').action(async (name: string) => {
    const result = await session.ops.setBudgeting(name, true);
    print(result, () => formatOrgCredits(result));
  });
  credits.command('disable <org>').description('turn budgeting off').action(async (name: string) => {
    const result = await session.ops.setBudgeting(name, false);
    print(result, () => formatOrgCredits(result));
  });
  credits
    .command('default-limit <org> [credits]')
    .description('the allocation new members get; without an amount, none (existing members keep theirs)')
    .action(async (name: string, amount: string | undefined) => {
      const result = await session.ops.setDefaultLimit(name, amount ?? null);
      print(result, () => formatOrgCredits(result));
    });
  credits
    .command('allocate <user> [credits]')
    .description('the member may spend this many credits from now on; without an amount, no limit')
    .action(async (name: string, amount: string | undefined) => {
      const result = await session.ops.allocate(name, amount ?? null);
      print(result, () => formatUserCredits(result));
    });
  credits.command('deallocate <user>').description('back to no limit (the org balance alone)').action(async (name: string) => {
    const result = await session.ops.deallocate(name);
    print(result, () => formatUserCredits(result));
  });
  credits.command('user <user>').description('assigned (-1 = no limit), spent and available credits').action(async (name: string) => {
    const result = await session.ops.userCredits(name);
    print(result, () => formatUserCredits(result));
  });

  program
    .command('report')
    .description('usage rows (date, scope, owner, service type, metric, count, credits) and totals')
    .option('--user <user>', 'one user')
    .option('--org <org>', "an org: its pool (org keys) and its members' own use (user keys)")
    .option('--all', 'every user')
    .addOption(new Option('--frame <frame>', 'time frame (default 30days; cycle with --month)').choices([...FRAME_NAMES]))
    .option('--from <date>', 'first day, YYYY-MM-DD (default: the frame ends today, UTC)')
    .option('--month <YYYYMM>', 'with --frame cycle: the billing cycle that starts in that month')
    .option('--unsorted', 'stream rows in SCAN order instead of sorting them (bounded memory for huge reports)')
    .option('--no-totals', 'leave out the totals rows')
    .addOption(new Option('--format <format>', 'output format (default: table, or json with --json)').choices(['table', 'json', 'csv']))
    .action(async (options: {
      user?: string;
      org?: string;
      all?: boolean;
      frame?: string;
      from?: string;
      month?: string;
      unsorted?: boolean;
      totals: boolean;
      format?: ReportFormat;
    }) => {
      const chosen = [options.user !== undefined, options.org !== undefined, options.all === true].filter(Boolean).length;
      if (chosen !== 1) throw new InvalidInputError(ERROR_CODES.invalidArgument, 'give exactly one of --user, --org, --all');
      const target: ReportTarget =
        options.user !== undefined ? { user: options.user } : options.org !== undefined ? { org: options.org } : { all: true };
      const request = { target, frame: options.frame, from: options.from, month: options.month };
      // Check the arguments before touching Redis, so a bad frame or date needs no server.
      planReport(request, Date.now());
      const nowMs = io.clock?.() ?? (await serverNowMs(session.ops));
      const needsAnchor = options.frame === 'cycle' || options.month !== undefined;
      const plan = planReport(request, nowMs, needsAnchor ? await reportAnchorDay(session.ops.redis, target, session.ops.keyLayout) : null);
      const format: ReportFormat = options.format ?? (json() ? 'json' : 'table');
      let rows: AsyncIterable<ReportRow> = reportRows(session.ops.redis, plan, { layout: session.ops.keyLayout });
      if (options.unsorted !== true) rows = sortedRows(rows);
      if (options.totals) rows = withTotals(rows);
      const count = await writeReport(rows, format, io.stdout);
      if (format === 'table') {
        const { from, to } = planDates(plan);
        io.stdout.write(`${count} rows, ${from} to ${to} (UTC)\n`);
      }
    });

  registerMigrateCommand(program, io);
  return program;
}

function positiveMs(value: string): string {
  if (!/^\d{2,6}$/.test(value)) throw new InvalidInputError(ERROR_CODES.invalidArgument, '--timeout-ms must be 10 to 999999');
  return value;
}

/**
 * Runs one `tollgate` invocation (`argv` without node and script) and resolves to its exit
 * code; errors go to `io.stderr`, never thrown. The Redis connection is closed before returning.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let program: Command | undefined;
  const session = new Session(() => program?.opts<GlobalOptions>() ?? {}, io.env);
  program = createProgram(io, session);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    return reportError(error, io);
  } finally {
    await session.close();
  }
}

function reportError(error: unknown, io: CliIo): number {
  // The reader went away (`tollgate report ... | head -1`): nothing more to say, and no one to say it to.
  if (error instanceof OutputClosedError || (error as { code?: unknown } | null)?.code === 'EPIPE') return EXIT.ok;
  if (error instanceof CommanderError) {
    // Commander already printed its message; asked-for help and --version exit 0, the rest are usage errors.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof RedisUnavailableError) {
    // ioredis's own wording (retry options and the like) means nothing to an operator.
    io.stderr.write(`tollgate: Redis is unavailable (refused, or no answer within --timeout-ms); nothing was changed [${error.code}]\n`);
    return EXIT.runtime;
  }
  if (error instanceof TollgateError) {
    io.stderr.write(`tollgate: ${error.message} [${error.code}]\n`);
    return error instanceof InvalidInputError ? EXIT.usage : EXIT.runtime;
  }
  io.stderr.write(`tollgate: unexpected failure: ${error instanceof Error ? error.message : String(error)}\n`);
  return EXIT.runtime;
}
