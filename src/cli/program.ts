// The `tollgate` command: commander program over the shared admin operations, runnable in-process with injected streams.
import type { Writable } from 'node:stream';
import { Argument, Command, CommanderError, Option } from 'commander';
import { ERROR_CODES, InvalidInputError, TollgateError } from '../core/errors.js';
import { QUOTA_KINDS, type QuotaKind } from '../core/quota-kinds.js';
import { Tollgate } from '../tollgate.js';
import { TIME_FRAMES } from '../admin/inputs.js';
import { AdminOperations, type AdminTarget } from '../admin/operations.js';
import { serverNowMs } from '../admin/router.js';
import { planDates, planReport, reportRows, writeReport, type ReportFormat, type ReportTarget } from '../admin/reports.js';
import { formatOrg, formatOrgCredits, formatUsage, formatUser, formatUserCredits } from './format.js';

/** Where the command reads its environment and writes its output. */
export interface CliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** `REDIS_URL` is read from here. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Epoch ms "now" for reports; default the Redis server's clock. Meant for tests. */
  readonly clock?: () => number;
}

/** Exit codes: 0 success, 1 a runtime failure (unknown user, Redis down), 2 a usage error (bad arguments). */
export const EXIT = Object.freeze({ ok: 0, runtime: 1, usage: 2 });

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

interface GlobalOptions {
  redis?: string;
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
      const { redis, timeoutMs } = this.options();
      const timeout = timeoutMs === undefined ? 5000 : Number(timeoutMs);
      this.#tollgate = new Tollgate({ redis: redis ?? this.env.REDIS_URL ?? DEFAULT_REDIS_URL, timeoutMs: Math.min(60_000, timeout) });
      this.#ops = new AdminOperations(this.#tollgate, { timeoutMs: timeout });
    }
    return this.#ops;
  }

  async close(): Promise<void> {
    await this.#tollgate?.close();
  }
}

const kindArgument = (): Argument => new Argument('<kind>', 'quota kind').choices([...QUOTA_KINDS]);

/**
 * Builds the `tollgate` program writing to `io`. Commander is set never to call
 * process.exit: {@link runCli} turns its errors into exit codes.
 */
function createProgram(io: CliIo, session: Session): Command {
  const program = new Command('tollgate')
    .description('Operate Tollgate quotas, API keys and credit budgets on Redis (CARTO key layout).')
    .option('--redis <url>', `Redis URL (default: $REDIS_URL, else ${DEFAULT_REDIS_URL})`)
    .option('--json', 'print JSON instead of tables')
    .addOption(new Option('--timeout-ms <ms>', 'bound on each Redis call').default('5000').argParser(positiveMs))
    .exitOverride()
    .configureOutput({ writeOut: (text) => void io.stdout.write(text), writeErr: (text) => void io.stderr.write(text) })
    .showSuggestionAfterError();

  const json = (): boolean => Boolean(program.opts<GlobalOptions>().json);
  const print = (value: unknown, human: () => string): void => {
    io.stdout.write(json() ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
  };
  const done = (value: Record<string, unknown>, message: string): void => print({ ok: true, ...value }, () => message);

  const user = program.command('user').description('show and change users (rails:users:<name>)');
  user.command('create <user>').description('create a user hash, every quota 0').action(async (name: string) => {
    await session.ops.create({ user: name });
    done({ user: name }, `created user ${name}`);
  });
  user.command('show <user>').description('the CARTO user view: quotas, use, limits, providers, credits').action(async (name: string) => {
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
      await session.ops.setSoftLimit(name, kind, state === 'on');
      done({ user: name, kind, softLimit: state === 'on' }, `soft limit of ${kind} for ${name}: ${state}`);
    });
  user.command('set-org <user> <org>').description('put the user in an org (pooled quotas, credit budget)').action(async (name: string, org: string) => {
    await session.ops.setOrganization(name, org);
    done({ user: name, org }, `${name} is now a member of ${org}`);
  });
  user.command('leave-org <user>').description('take the user out of its org').action(async (name: string) => {
    await session.ops.setOrganization(name, null);
    done({ user: name, org: null }, `${name} is in no org`);
  });
  user.command('create-key <user>').description('create an API key (printed once, only its SHA-256 is stored)').action(async (name: string) => {
    const created = await session.ops.createApiKey(name);
    print(created, () => `API key for ${name} (shown once, store it now):\n${created.apiKey}`);
  });
  user.command('revoke-key <user>').description("remove the user's API key").action(async (name: string) => {
    const revoked = await session.ops.revokeApiKey(name);
    done({ user: name, revoked }, revoked ? `revoked the API key of ${name}` : `${name} had no API key`);
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
      .command('set-quota')
      .description('set the quota of one kind (units per billing cycle)')
      .argument(`<${role}>`)
      .addArgument(kindArgument())
      .argument('<quota>', 'a non-negative integer')
      .action(async (name: string, kind: QuotaKind, quota: string) => {
        await session.ops.setQuota(target(name), kind, quota);
        done({ [role]: name, kind, quota: Number(quota) }, `${kind} quota of ${role} ${name}: ${quota}`);
      });
    parent
      .command('set-provider')
      .description('set the provider of one kind (names the service_type of usage keys)')
      .argument(`<${role}>`)
      .addArgument(kindArgument())
      .argument('<provider>')
      .action(async (name: string, kind: QuotaKind, provider: string) => {
        await session.ops.setProvider(target(name), kind, provider);
        done({ [role]: name, kind, provider }, `${kind} provider of ${role} ${name}: ${provider}`);
      });
    parent
      .command('set-period-end')
      .description('set period_end_date (YYYY-MM-DD); its day of month starts each billing cycle')
      .argument(`<${role}>`)
      .argument('<date>')
      .action(async (name: string, date: string) => {
        const stored = await session.ops.setPeriodEndDate(target(name), date);
        done({ [role]: name, period_end_date: stored }, `period_end_date of ${role} ${name}: ${stored}`);
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
    .description('usage rows (date, user, service type, metric, count, credits), streamed')
    .option('--user <user>', 'one user')
    .option('--org <org>', "every member of an org")
    .option('--all', 'every user')
    .addOption(new Option('--frame <frame>', 'time frame').choices(Object.keys(TIME_FRAMES)).default('30days'))
    .option('--from <date>', 'first day, YYYY-MM-DD (default: the frame ends today, UTC)')
    .addOption(new Option('--format <format>', 'output format (default: table, or json with --json)').choices(['table', 'json', 'csv']))
    .action(async (options: { user?: string; org?: string; all?: boolean; frame: string; from?: string; format?: ReportFormat }) => {
      const chosen = [options.user !== undefined, options.org !== undefined, options.all === true].filter(Boolean).length;
      if (chosen !== 1) throw new InvalidInputError(ERROR_CODES.invalidArgument, 'give exactly one of --user, --org, --all');
      const target: ReportTarget =
        options.user !== undefined ? { user: options.user } : options.org !== undefined ? { org: options.org } : { all: true };
      // Check the arguments before touching Redis, so a bad frame or date needs no server.
      planReport({ target, frame: options.frame, from: options.from }, Date.now());
      const nowMs = io.clock?.() ?? (await serverNowMs(session.ops));
      const plan = planReport({ target, frame: options.frame, from: options.from }, nowMs);
      const format: ReportFormat = options.format ?? (json() ? 'json' : 'table');
      const count = await writeReport(reportRows(session.ops.redis, plan), format, io.stdout);
      if (format === 'table') {
        const { from, to } = planDates(plan);
        io.stdout.write(`${count} rows, ${from} to ${to} (UTC)\n`);
      }
    });

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
  if (error instanceof CommanderError) {
    // Commander already printed its message; asked-for help and --version exit 0, the rest are usage errors.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof TollgateError) {
    io.stderr.write(`tollgate: ${error.message} [${error.code}]\n`);
    return error instanceof InvalidInputError ? EXIT.usage : EXIT.runtime;
  }
  io.stderr.write(`tollgate: unexpected failure: ${error instanceof Error ? error.message : String(error)}\n`);
  return EXIT.runtime;
}
