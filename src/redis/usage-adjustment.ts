// Typed wrapper of lua/adjust-usage.lua: an operator's audited credit-back of today's usage.
import { UnexpectedReplyError } from '../core/errors.js';
import type { RedisClient } from './connection.js';
import { commandOf, loadScript } from './scripts.js';

const SCRIPT = loadScript('adjust-usage');

/** Audit entries kept per user. */
export const MAX_ADJUSTMENTS_KEPT = 1000;

/** Input of {@link runAdjustUsage}. */
export interface AdjustUsageInput {
  readonly auditKey: string;
  /** The usage keys whose `day` member drops by `units`. */
  readonly usageKeys: readonly string[];
  readonly day: string;
  readonly units: number;
  /** The audit entry, stored as JSON. */
  readonly entry: Readonly<Record<string, unknown>>;
}

/** Runs lua/adjust-usage.lua; `wrong_type` when a key is not what it should be (nothing written). */
export async function runAdjustUsage(client: RedisClient, input: AdjustUsageInput): Promise<'done' | 'wrong_type'> {
  if (!(SCRIPT.command in client)) client.defineCommand(SCRIPT.command, { lua: SCRIPT.lua });
  const keys = [input.auditKey, ...input.usageKeys];
  const reply = await commandOf(client, SCRIPT)(keys.length, ...keys, input.day, input.units, JSON.stringify(input.entry), MAX_ADJUSTMENTS_KEPT);
  const status = Array.isArray(reply) ? Number(reply[0]) : NaN;
  if (status === 1) return 'done';
  if (status === 5) return 'wrong_type';
  throw new UnexpectedReplyError(`adjust-usage: unknown status ${String(status)}`);
}

/** The newest `limit` audit entries of a user's adjustments. */
export async function readAdjustments(client: RedisClient, auditKey: string, limit: number): Promise<Array<Record<string, unknown>>> {
  const raw = await client.lrange(auditKey, 0, limit - 1);
  return raw.map((entry) => {
    try {
      return JSON.parse(entry) as Record<string, unknown>;
    } catch {
      return { unreadable: true };
    }
  });
}
