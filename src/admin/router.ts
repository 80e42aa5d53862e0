// The admin API: an Express router exposing the operator's operations as JSON, behind a bearer token.
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from '../core/api-keys.js';
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
import type { QuotaKind } from '../core/quota-kinds.js';
import { HTTP_ERROR_CODES, HttpProblem, PROBLEM_TYPE_PREFIX, sendProblem, type HttpErrorCode } from '../http/problems.js';
import { serverTimeMs } from '../redis/accounts.js';
import type { Tollgate } from '../tollgate.js';
import { dashboardApi, dashboardAssets } from './dashboard/router.js';
import { bodies, parseInput, values } from './inputs.js';
import { AdminOperations, type AdminTarget, type Warnings } from './operations.js';
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
} from './reports.js';

/** Seconds a client is told to wait (`Retry-After`) when Redis is unavailable. */
export const REDIS_RETRY_AFTER_SECONDS = 5;

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
  /** Receives every change made. Default: an `admin.change` line through the Tollgate client's logger. */
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
  const expected = sha256(config.token);
  const ops = new AdminOperations(config.tollgate);
  // The audit log goes through the Tollgate client's logger (pino) unless the host takes it.
  const log = config.log ?? ((change: AdminChange) => config.tollgate.logger.info({ event: 'admin.change', ...change }, `admin: ${change.action} ${change.target}`));
  const router = withForwardedRejections(express.Router());
  router.use(dashboardAssets()); // the page and its assets hold no data: served before the token check

  router.use((req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization');
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (match === null) {
      sendProblem(res, problem(401, HTTP_ERROR_CODES.unauthorized, 'missing bearer token', { 'WWW-Authenticate': 'Bearer realm="tollgate-admin"' }));
      return;
    }
    if (!timingSafeEqual(sha256(match[1]!), expected)) {
      sendProblem(res, problem(403, HTTP_ERROR_CODES.forbidden, 'wrong token'));
      return;
    }
    next();
  });
  router.use(express.json({ limit: '16kb' }));
  router.use(dashboardApi({ tollgate: config.tollgate, ...(config.clock === undefined ? {} : { clock: config.clock }) }));

  const changed = (action: string, target: string, values?: Record<string, unknown>): void => {
    log(Object.freeze({ at: new Date().toISOString(), action, target, ...(values === undefined ? {} : { values }) }));
  };
  const body = <S extends z.ZodType>(req: Request, schema: S): z.output<S> => parseInput(schema, req.body ?? {});
  const param = (req: Request, name: string): string => String(req.params[name]);
  const kindOf = (req: Request): QuotaKind => parseInput(values.kind, param(req, 'kind'), 'quota kind');
  const targetOf = (req: Request): AdminTarget => (req.params.user !== undefined ? { user: param(req, 'user') } : { org: param(req, 'org') });
  const describe = (target: AdminTarget): string => ('user' in target ? `user:${target.user}` : `org:${(target as { org: string }).org}`);
  const query = (req: Request, name: string): string | undefined => {
    const value = (req.query as Record<string, unknown>)[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new InvalidInputError(ERROR_CODES.invalidArgument, `query parameter ${name} must be given once`);
    return value;
  };
  const flag = (req: Request, name: string): boolean => {
    const value = query(req, name);
    if (value === undefined || value === 'false') return false;
    if (value === 'true') return true;
    throw new InvalidInputError(ERROR_CODES.invalidArgument, `query parameter ${name} must be true or false`);
  };
  /** A change's answer: its result, plus `warnings` when CARTO's rules make it do less than it seems. */
  const answer = (res: Response, result: Record<string, unknown>, warnings: Warnings, status = 200): void => {
    res.status(status).json(warnings.length === 0 ? result : { ...result, warnings });
  };

  router.get('/users', async (req, res) => void res.json(await ops.list('user', query(req, 'cursor') ?? '0', query(req, 'count') ?? '100')));
  router.get('/orgs', async (req, res) => void res.json(await ops.list('org', query(req, 'cursor') ?? '0', query(req, 'count') ?? '100')));
  router.get('/users/:user', async (req, res) => void res.json(await ops.showUser(param(req, 'user'))));
  router.get('/orgs/:org', async (req, res) => void res.json(await ops.showOrg(param(req, 'org'))));
  router.get('/users/:user/usage', async (req, res) => void res.json(await ops.usage({ user: param(req, 'user') })));
  router.get('/orgs/:org/usage', async (req, res) => void res.json(await ops.usage({ org: param(req, 'org') })));

  for (const owner of ['users', 'orgs'] as const) {
    const path = owner === 'users' ? '/users/:user' : '/orgs/:org';
    router.post(`/${owner}`, async (req, res) => {
      const { name } = body(req, bodies.create);
      const target: AdminTarget = owner === 'users' ? { user: name as string } : { org: name as string };
      await ops.create(target);
      changed('create', describe(target));
      res.status(201).json({ created: describe(target) });
    });
    router.delete(path, async (req, res) => {
      const target = targetOf(req);
      const withUsage = flag(req, 'with_usage');
      const deleted = await ops.delete(target, { withUsage });
      changed('delete', describe(target), { with_usage: withUsage, usage_keys: deleted.usageKeys });
      res.json(deleted);
    });
    router.put(`${path}/quota/:kind`, async (req, res) => {
      const target = targetOf(req);
      const kind = kindOf(req);
      const { quota } = body(req, bodies.quota);
      const warnings = await ops.setQuota(target, kind, quota);
      changed('set-quota', describe(target), { kind, quota });
      answer(res, { ok: true }, warnings);
    });
    router.put(`${path}/block-price/:kind`, async (req, res) => {
      const target = targetOf(req);
      const kind = kindOf(req);
      const { block_price: price } = body(req, bodies.blockPrice);
      const warnings = await ops.setBlockPrice(target, kind, price);
      changed('set-block-price', describe(target), { kind, block_price: price });
      answer(res, { ok: true }, warnings);
    });
    router.delete(`${path}/block-price/:kind`, async (req, res) => {
      const target = targetOf(req);
      const kind = kindOf(req);
      const warnings = await ops.setBlockPrice(target, kind, null);
      changed('clear-block-price', describe(target), { kind });
      answer(res, { ok: true }, warnings);
    });
    router.put(`${path}/provider/:kind`, async (req, res) => {
      const target = targetOf(req);
      const kind = kindOf(req);
      const { provider } = body(req, bodies.provider);
      const warnings = await ops.setProvider(target, kind, provider);
      changed('set-provider', describe(target), { kind, provider });
      answer(res, { ok: true }, warnings);
    });
    router.put(`${path}/period-end-date`, async (req, res) => {
      const target = targetOf(req);
      const { date } = body(req, bodies.date);
      const changedDate = await ops.setPeriodEndDate(target, date.periodEndDate);
      changed('set-period-end-date', describe(target), changedDate.result);
      answer(res, changedDate.result, changedDate.warnings);
    });
  }

  router.put('/users/:user/soft-limit/:kind', async (req, res) => {
    const user = param(req, 'user');
    const kind = kindOf(req);
    const { enabled } = body(req, bodies.enabled);
    const warnings = await ops.setSoftLimit(user, kind, enabled);
    changed('set-soft-limit', `user:${user}`, { kind, enabled });
    answer(res, { ok: true }, warnings);
  });
  router.put('/users/:user/organization', async (req, res) => {
    const user = param(req, 'user');
    const { org } = body(req, bodies.organization);
    const warnings = await ops.setOrganization(user, org);
    changed('set-organization', `user:${user}`, { org });
    answer(res, { ok: true }, warnings);
  });

  /** A fresh key is shown once: never cached on the way. */
  const created = (res: Response, key: Record<string, unknown>): void => {
    res.status(201).set('Cache-Control', 'no-store').json(key);
  };
  router.get('/users/:user/api-keys', async (req, res) => void res.json(await ops.listApiKeys(param(req, 'user'))));
  for (const path of ['/users/:user/api-key', '/users/:user/api-keys']) {
    router.post(path, async (req, res) => {
      const user = param(req, 'user');
      const { name } = body(req, bodies.createKey);
      const key = await ops.createApiKey(user, name);
      changed('create-api-key', `user:${user}`, { name: key.name });
      created(res, { ...key });
    });
  }
  router.delete('/users/:user/api-key', async (req, res) => {
    const user = param(req, 'user');
    const revoked = await ops.revokeApiKey(user);
    changed('revoke-api-key', `user:${user}`, revoked);
    res.json(revoked);
  });
  router.delete('/users/:user/api-keys/:name', async (req, res) => {
    const user = param(req, 'user');
    const revoked = await ops.revokeApiKey(user, param(req, 'name'));
    changed('revoke-api-key', `user:${user}`, revoked);
    res.json(revoked);
  });
  router.post('/users/:user/api-keys/:name/rotate', async (req, res) => {
    const user = param(req, 'user');
    const { newName, overlapSeconds } = body(req, bodies.rotateKey);
    const key = await ops.rotateApiKey(user, param(req, 'name'), { newName, overlapSeconds });
    changed('rotate-api-key', `user:${user}`, { name: key.name, previous: key.previous, previousExpiresAt: key.previousExpiresAt });
    created(res, { ...key });
  });

  router.get('/users/:user/usage-adjustments', async (req, res) => void res.json(await ops.adjustments(param(req, 'user'))));
  router.post('/users/:user/usage-adjustments', async (req, res) => {
    const user = param(req, 'user');
    const { kind, units, reason } = body(req, bodies.adjustUsage);
    const adjustment = await ops.adjustUsage(user, kind, units, { ...(reason === undefined ? {} : { reason }), actor: 'admin-api' });
    changed('adjust-usage', `user:${user}`, { kind, units, reason: reason ?? null });
    res.status(201).json(adjustment);
  });

  router.get('/orgs/:org/credits', async (req, res) => void res.json(await ops.orgCredits(param(req, 'org'))));
  router.put('/orgs/:org/credits', async (req, res) => {
    const org = param(req, 'org');
    const { credits } = body(req, bodies.credits);
    const result = await ops.setOrgCredits(org, credits);
    changed('set-credits', `org:${org}`, { credits: result.credits });
    res.json(result);
  });
  router.post('/orgs/:org/credits/add', async (req, res) => {
    const org = param(req, 'org');
    const { credits } = body(req, bodies.credits);
    const result = await ops.addOrgCredits(org, credits);
    changed('add-credits', `org:${org}`, { added: credits, credits: result.credits });
    res.json(result);
  });
  router.put('/orgs/:org/credits/enabled', async (req, res) => {
    const org = param(req, 'org');
    const { enabled } = body(req, bodies.enabled);
    const result = await ops.setBudgeting(org, enabled);
    changed(enabled ? 'enable-credits' : 'disable-credits', `org:${org}`);
    res.json(result);
  });
  router.put('/orgs/:org/credits/default-limit', async (req, res) => {
    const org = param(req, 'org');
    const { credits } = body(req, bodies.optionalCredits);
    const result = await ops.setDefaultLimit(org, credits ?? null);
    changed('set-default-limit', `org:${org}`, { credits: credits ?? null });
    res.json(result);
  });
  router.get('/users/:user/credits', async (req, res) => void res.json(await ops.userCredits(param(req, 'user'))));
  router.put('/users/:user/credits/allocation', async (req, res) => {
    const user = param(req, 'user');
    const { credits } = body(req, bodies.optionalCredits);
    const result = await ops.allocate(user, credits ?? null);
    changed('allocate', `user:${user}`, { credits: credits ?? null });
    res.json(result);
  });
  router.delete('/users/:user/credits/allocation', async (req, res) => {
    const user = param(req, 'user');
    const result = await ops.deallocate(user);
    changed('deallocate', `user:${user}`);
    res.json(result);
  });

  router.get('/reports', async (req, res) => {
    const one = (name: string): string | undefined => query(req, name);
    const target: ReportTarget = one('user') !== undefined ? { user: one('user')! } : one('org') !== undefined ? { org: one('org')! } : { all: true };
    const format = (one('format') ?? 'json') as ReportFormat;
    if (format !== 'json' && format !== 'csv') {
      throw new InvalidInputError(ERROR_CODES.invalidArgument, 'format must be json or csv');
    }
    const request = { target, frame: one('frame'), from: one('from'), month: one('month') };
    const unsorted = flag(req, 'unsorted');
    const totals = !flag(req, 'no_totals');
    planReport(request, Date.now()); // arguments checked before Redis is asked anything
    const nowMs = config.clock?.() ?? (await serverNowMs(ops));
    const needsAnchor = request.frame === 'cycle' || request.month !== undefined;
    const plan = planReport(request, nowMs, needsAnchor ? await reportAnchorDay(ops.redis, target, ops.keyLayout) : null);
    // A client that goes away aborts the SCAN at its next batch (sorted reports read everything before writing).
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    let rows: AsyncIterable<ReportRow> = reportRows(ops.redis, plan, { signal: abort.signal, layout: ops.keyLayout });
    if (!unsorted) rows = sortedRows(rows);
    if (totals) rows = withTotals(rows);
    const iterator = rows[Symbol.asyncIterator]();
    // Pull the first row before answering, so an unknown user or org still gets a clean 404.
    const first = await iterator.next();
    if (abort.signal.aborted) return;
    const all = (async function* () {
      if (!first.done) yield first.value;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    })();
    const dates = planDates(plan);
    res.set('X-Report-From', dates.from).set('X-Report-To', dates.to);
    res.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json');
    try {
      await writeReport(all, format, res);
    } catch (error) {
      if (error instanceof OutputClosedError) return;
      throw error;
    } finally {
      await iterator.return?.(undefined);
    }
    res.end();
  });

  // Anything else is a problem+json 404, like every other answer of this router (never Express's HTML page).
  router.use((req: Request, _res: Response, next: NextFunction) => {
    next(problem(404, HTTP_ERROR_CODES.notFound, `no admin route ${req.method} ${req.path}; see docs/admin.md`));
  });

  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    if (error instanceof HttpProblem) {
      sendProblem(res, error);
      return;
    }
    if (error instanceof RedisUnavailableError) {
      // The cause (ioredis's own words) stays out of the answer; Retry-After tells clients when to come back.
      sendProblem(res, problem(503, error.code, 'Redis is unavailable; nothing was changed, retry later', { 'Retry-After': String(REDIS_RETRY_AFTER_SECONDS) }));
      return;
    }
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

