// The admin API: an Express router exposing the operator's operations as JSON, behind a bearer token.
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import {
  ConflictError,
  ERROR_CODES,
  InvalidConfigError,
  InvalidInputError,
  NotFoundError,
  RedisUnavailableError,
  TollgateError,
  type TollgateErrorCode,
} from '../core/errors.js';
import { quotaKindSpec } from '../core/quota-kinds.js';
import { withForwardedRejections } from '../http/express-compat.js';
import { HTTP_ERROR_CODES, HttpProblem, PROBLEM_TYPE_PREFIX, sendProblem, type HttpErrorCode } from '../http/problems.js';
import { serverTimeMs } from '../redis/accounts.js';
import type { Tollgate } from '../tollgate.js';
import { parseSwitch } from './inputs.js';
import { AdminOperations, type AdminTarget } from './operations.js';
import { planDates, planReport, reportRows, writeReport, type ReportFormat, type ReportTarget } from './reports.js';

/** One change made through the admin API, as logged. Never holds a token, an API key or its digest. */
export interface AdminChange {
  readonly at: string;
  readonly action: string;
  readonly target: string;
  /** The new values, as given; absent for changes that carry a secret (API keys). */
  readonly values?: Readonly<Record<string, unknown>>;
}

/** Options of {@link createAdminRouter}. */
export interface AdminRouterOptions {
  /** The Tollgate client whose Redis and quota logic the API uses. */
  readonly tollgate: Tollgate;
  /** The bearer token callers must present. At least 16 characters; compared in constant time. */
  readonly token: string;
  /** Receives every change made. Default: one JSON line on stderr. */
  readonly log?: (change: AdminChange) => void;
  /** Epoch ms "now" for reports; default the Redis server's clock. Meant for tests. */
  readonly clock?: () => number;
}

const optionsSchema = z.strictObject({
  tollgate: z.custom<Tollgate>((value) => typeof value === 'object' && value !== null && 'redis' in value, 'must be a Tollgate'),
  token: z.string().min(16, 'must be at least 16 characters'),
  log: z.custom<(change: AdminChange) => void>((value) => typeof value === 'function').optional(),
  clock: z.custom<() => number>((value) => typeof value === 'function').optional(),
});

const defaultLog = (change: AdminChange): void => {
  process.stderr.write(`${JSON.stringify({ tollgateAdmin: change })}\n`);
};

/** HTTP status of a typed error: the caller's fault (4xx) or ours / Redis's (5xx). */
function statusOf(error: TollgateError): number {
  if (error instanceof InvalidInputError) return 400;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  if (error instanceof InvalidConfigError) return 422;
  if (error instanceof RedisUnavailableError) return 503;
  return 500;
}

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  422: 'Unusable configuration',
  500: 'Internal error',
  503: 'Service unavailable',
};

/** An RFC 9457 problem, the same shape the quota middleware answers with. */
function problem(status: number, code: HttpErrorCode | TollgateErrorCode, detail: string, headers: Record<string, string> = {}): HttpProblem {
  const title = TITLES[status] ?? 'Error';
  const slug = title.toLowerCase().replace(/ /g, '-');
  return new HttpProblem({ type: `${PROBLEM_TYPE_PREFIX}admin-${slug}`, title, status, detail, code }, headers);
}

/** SHA-256 first, so the constant-time comparison sees equal lengths whatever was sent. */
const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/**
 * Builds the admin router. Mount it where the host app wants it (`app.use('/admin', router)`).
 * Every route needs `Authorization: Bearer <token>`: 401 without one, 403 with a wrong one.
 * Bodies are JSON; errors are RFC 9457 problem+json with a stable `code`.
 */
export function createAdminRouter(options: AdminRouterOptions): Router {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'options'}: ${issue.message}`);
    throw new InvalidInputError(ERROR_CODES.invalidOptions, `invalid admin router options: ${detail.join('; ')}`);
  }
  const config = Object.freeze(parsed.data);
  const expected = digest(config.token);
  const ops = new AdminOperations(config.tollgate);
  const log = config.log ?? defaultLog;
  const router = withForwardedRejections(express.Router());

  router.use((req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization');
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (match === null) {
      sendProblem(res, problem(401, HTTP_ERROR_CODES.unauthorized, 'missing bearer token', { 'WWW-Authenticate': 'Bearer realm="tollgate-admin"' }));
      return;
    }
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      sendProblem(res, problem(403, HTTP_ERROR_CODES.forbidden, 'wrong token'));
      return;
    }
    next();
  });
  router.use(express.json({ limit: '16kb' }));

  const changed = (action: string, target: string, values?: Record<string, unknown>): void => {
    log(Object.freeze({ at: new Date().toISOString(), action, target, ...(values === undefined ? {} : { values }) }));
  };
  const body = (req: Request): Record<string, unknown> =>
    typeof req.body === 'object' && req.body !== null && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : {};
  const param = (req: Request, name: string): string => String(req.params[name]);
  const kindOf = (req: Request) => quotaKindSpec(param(req, 'kind')).kind;
  const targetOf = (req: Request): AdminTarget => (req.params.user !== undefined ? { user: param(req, 'user') } : { org: param(req, 'org') });
  const describe = (target: AdminTarget): string => ('user' in target ? `user:${target.user}` : `org:${(target as { org: string }).org}`);

  router.get('/users/:user', async (req, res) => void res.json(await ops.showUser(param(req, 'user'))));
  router.get('/orgs/:org', async (req, res) => void res.json(await ops.showOrg(param(req, 'org'))));
  router.get('/users/:user/usage', async (req, res) => void res.json(await ops.usage({ user: param(req, 'user') })));
  router.get('/orgs/:org/usage', async (req, res) => void res.json(await ops.usage({ org: param(req, 'org') })));

  for (const owner of ['users', 'orgs'] as const) {
    const path = owner === 'users' ? '/users/:user' : '/orgs/:org';
    router.post(`/${owner}`, async (req, res) => {
      const name = body(req).name;
      const target: AdminTarget = owner === 'users' ? { user: name as string } : { org: name as string };
      await ops.create(target);
      changed('create', describe(target));
      res.status(201).json({ created: describe(target) });
    });
    router.put(`${path}/quota/:kind`, async (req, res) => {
      const target = targetOf(req);
      const kind = kindOf(req);
      await ops.setQuota(target, kind, body(req).quota);
      changed('set-quota', describe(target), { kind, quota: body(req).quota });
      res.json({ ok: true });
    });
    router.put(`${path}/provider/:kind`, async (req, res) => {
      const target = targetOf(req);
      const kind = kindOf(req);
      await ops.setProvider(target, kind, body(req).provider);
      changed('set-provider', describe(target), { kind, provider: body(req).provider });
      res.json({ ok: true });
    });
    router.put(`${path}/period-end-date`, async (req, res) => {
      const target = targetOf(req);
      const stored = await ops.setPeriodEndDate(target, body(req).date);
      changed('set-period-end-date', describe(target), { period_end_date: stored });
      res.json({ period_end_date: stored });
    });
  }

  router.put('/users/:user/soft-limit/:kind', async (req, res) => {
    const user = param(req, 'user');
    const kind = kindOf(req);
    const on = parseSwitch(body(req).enabled);
    await ops.setSoftLimit(user, kind, on);
    changed('set-soft-limit', `user:${user}`, { kind, enabled: on });
    res.json({ ok: true });
  });
  router.put('/users/:user/organization', async (req, res) => {
    const user = param(req, 'user');
    const org = body(req).org ?? null;
    await ops.setOrganization(user, org as string | null);
    changed('set-organization', `user:${user}`, { org });
    res.json({ ok: true });
  });
  router.post('/users/:user/api-key', async (req, res) => {
    const created = await ops.createApiKey(param(req, 'user'));
    changed('create-api-key', `user:${created.username}`);
    res.status(201).set('Cache-Control', 'no-store').json(created);
  });
  router.delete('/users/:user/api-key', async (req, res) => {
    const user = param(req, 'user');
    const revoked = await ops.revokeApiKey(user);
    changed('revoke-api-key', `user:${user}`, { revoked });
    res.json({ revoked });
  });

  router.get('/orgs/:org/credits', async (req, res) => void res.json(await ops.orgCredits(param(req, 'org'))));
  router.put('/orgs/:org/credits', async (req, res) => {
    const org = param(req, 'org');
    const result = await ops.setOrgCredits(org, body(req).credits);
    changed('set-credits', `org:${org}`, { credits: result.credits });
    res.json(result);
  });
  router.post('/orgs/:org/credits/add', async (req, res) => {
    const org = param(req, 'org');
    const result = await ops.addOrgCredits(org, body(req).credits);
    changed('add-credits', `org:${org}`, { added: body(req).credits, credits: result.credits });
    res.json(result);
  });
  router.put('/orgs/:org/credits/enabled', async (req, res) => {
    const org = param(req, 'org');
    const enabled = parseSwitch(body(req).enabled);
    const result = await ops.setBudgeting(org, enabled);
    changed(enabled ? 'enable-credits' : 'disable-credits', `org:${org}`);
    res.json(result);
  });
  router.put('/orgs/:org/credits/default-limit', async (req, res) => {
    const org = param(req, 'org');
    const result = await ops.setDefaultLimit(org, body(req).credits ?? null);
    changed('set-default-limit', `org:${org}`, { credits: body(req).credits ?? null });
    res.json(result);
  });
  router.get('/users/:user/credits', async (req, res) => void res.json(await ops.userCredits(param(req, 'user'))));
  router.put('/users/:user/credits/allocation', async (req, res) => {
    const user = param(req, 'user');
    const result = await ops.allocate(user, body(req).credits ?? null);
    changed('allocate', `user:${user}`, { credits: body(req).credits ?? null });
    res.json(result);
  });
  router.delete('/users/:user/credits/allocation', async (req, res) => {
    const user = param(req, 'user');
    const result = await ops.deallocate(user);
    changed('deallocate', `user:${user}`);
    res.json(result);
  });

  router.get('/reports', async (req, res) => {
    const query = req.query;
    const one = (name: string): string | undefined => (typeof query[name] === 'string' ? (query[name] as string) : undefined);
    const target: ReportTarget = one('user') !== undefined ? { user: one('user')! } : one('org') !== undefined ? { org: one('org')! } : { all: true };
    const format = (one('format') ?? 'json') as ReportFormat;
    if (format !== 'json' && format !== 'csv') {
      throw new InvalidInputError(ERROR_CODES.invalidArgument, 'format must be json or csv');
    }
    const nowMs = config.clock?.() ?? (await serverNowMs(ops));
    const plan = planReport({ target, frame: one('frame'), from: one('from') }, nowMs);
    const rows = reportRows(ops.redis, plan);
    // Pull the first row before answering, so an unknown user or org still gets a clean 404.
    const first = await rows.next();
    const all = (async function* () {
      if (!first.done) yield first.value;
      yield* rows;
    })();
    const dates = planDates(plan);
    res.set('X-Report-From', dates.from).set('X-Report-To', dates.to);
    res.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json');
    await writeReport(all, format, res);
    res.end();
  });

  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    if (error instanceof TollgateError) {
      sendProblem(res, problem(statusOf(error), error.code, error.message));
      return;
    }
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // express.json's own errors: malformed or oversized bodies.
      sendProblem(res, problem(status, ERROR_CODES.invalidArgument, 'malformed or oversized JSON body'));
      return;
    }
    sendProblem(res, problem(500, HTTP_ERROR_CODES.internal, 'internal error'));
  });
  return router;
}

/** The Redis server's clock in epoch ms, so reports agree with decisions on "today". */
export async function serverNowMs(ops: AdminOperations): Promise<number> {
  return serverTimeMs(ops.redis);
}

