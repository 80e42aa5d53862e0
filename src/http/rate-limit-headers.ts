// IETF httpapi RateLimit-Policy / RateLimit headers and Retry-After, computed from a quota decision.
import type { Response } from 'express';

/** The part of a decision the headers describe. */
export interface QuotaView {
  readonly quota: number;
  readonly used: number;
  readonly cycleStart: Date;
  readonly resetsAt: Date;
}

/** Policy names go out as a structured-field String; this keeps them free of quoting and escapes. */
export const POLICY_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Whole seconds from `nowMs` until `at`, rounded up so a client waiting that long is never early; at least 0. */
export function secondsUntil(at: Date, nowMs: number): number {
  return Math.max(0, Math.ceil((at.getTime() - nowMs) / 1000));
}

/**
 * The two header values of draft-ietf-httpapi-ratelimit-headers: the policy (`q` units per
 * window of `w` seconds, the billing cycle) and the current state (`r` remaining, `t`
 * seconds until the window resets).
 */
export function rateLimitHeaderValues(policy: string, view: QuotaView, nowMs: number): { policy: string; state: string } {
  const windowSeconds = Math.round((view.resetsAt.getTime() - view.cycleStart.getTime()) / 1000);
  const remaining = Math.max(0, view.quota - view.used);
  return {
    policy: `"${policy}";q=${view.quota};w=${windowSeconds}`,
    state: `"${policy}";r=${remaining};t=${secondsUntil(view.resetsAt, nowMs)}`,
  };
}

/** Sets `RateLimit-Policy` and `RateLimit` on a quota-guarded response. */
export function setRateLimitHeaders(res: Response, policy: string, view: QuotaView, nowMs: number): void {
  const values = rateLimitHeaderValues(policy, view, nowMs);
  res.setHeader('RateLimit-Policy', values.policy);
  res.setHeader('RateLimit', values.state);
}
