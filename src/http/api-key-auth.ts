// A middleware that only authenticates (no quota spent), for endpoints such as the user's quota report.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { ERROR_CODES, InvalidInputError } from '../core/errors.js';
import { Tollgate } from '../tollgate.js';
import { Authenticator, type IdentifyFunction } from './identity.js';
import { forwardRejections } from './express-compat.js';
import { HttpProblem, sendProblem } from './problems.js';
import { tollgateLocals } from './guard.js';

/** Options of {@link apiKeyAuth}. Parsed once; unknown keys are rejected. */
export interface ApiKeyAuthOptions {
  /** The Tollgate client whose Redis holds the user hashes. */
  readonly tollgate: Tollgate;
  /** An app's own authentication instead of `/u/:username` + API key. */
  readonly identify?: IdentifyFunction;
  /** Bound on the key lookup. Default 1000 ms. */
  readonly timeoutMs?: number;
}

const optionsSchema = z.strictObject({
  tollgate: z.custom<Tollgate>((value) => value instanceof Tollgate, 'must be a Tollgate client'),
  identify: z.custom<IdentifyFunction>((value) => typeof value === 'function', 'must be a function').optional(),
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
});

/**
 * Checks the caller exactly as {@link quotaGuard} does (401 problem+json when it fails, 503 when
 * Redis is down) and puts it in `res.locals.tollgate.identity`. Counts nothing.
 */
export function apiKeyAuth(options: ApiKeyAuthOptions): RequestHandler {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'options'}: ${issue.message}`);
    throw new InvalidInputError(ERROR_CODES.invalidOptions, `invalid apiKeyAuth options: ${detail.join('; ')}`);
  }
  const config = Object.freeze(parsed.data);
  const authenticator = new Authenticator({
    tollgate: config.tollgate,
    identify: config.identify ?? null,
    timeoutMs: config.timeoutMs,
    failOpenKeys: null,
  });
  return forwardRejections(async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      tollgateLocals(res).identity = await authenticator.authenticate(req, res);
    } catch (error) {
      if (!(error instanceof HttpProblem)) throw error;
      sendProblem(res, error);
      return;
    }
    next();
  });
}
