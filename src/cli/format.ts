// Human-readable tables for the `tollgate` command's output (the --json output is the raw objects).
import type { ApiKeyListing, OrgCredits, OrgView, QuotaBlock, UserCredits, UserView } from '../admin/operations.js';
import type { UsageSummary } from '../tollgate.js';

/** Aligns rows into columns; the first row is the header. */
export function table(rows: ReadonlyArray<ReadonlyArray<string | number | boolean | null>>): string {
  const cells = rows.map((row) => row.map((cell) => (cell === null ? '-' : String(cell))));
  const widths = cells[0]?.map((_, column) => Math.max(...cells.map((row) => row[column]?.length ?? 0))) ?? [];
  return cells.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()).join('\n');
}

const BLOCKS = ['geocoding', 'here_isolines', 'mapzen_routing'] as const;

function quotaTable(view: { geocoding: QuotaBlock; here_isolines: QuotaBlock; mapzen_routing: QuotaBlock }, providers: string[]): string {
  const header = ['kind', 'quota', 'monthly_use', 'block_price', 'hard_limit', 'provider'];
  return table([
    header,
    ...BLOCKS.map((name, index) => {
      const block = view[name];
      return [name, block.quota, block.monthly_use, block.block_price, block.hard_limit ?? null, providers[index] ?? null];
    }),
  ]);
}

/** A user as the CARTO endpoint shows it. */
export function formatUser(view: UserView): string {
  const head = table([
    ['user', view.username],
    ['organization', view.organization],
    ['period_end_date', view.period_end_date],
    ['api keys', view.api_keys.length === 0 ? 'none' : view.api_keys.map(keySummary).join(', ')],
  ]);
  const quotas = quotaTable(view, [view.geocoder_provider, view.isolines_provider, view.routing_provider]);
  return view.credits === null ? `${head}\n\n${quotas}` : `${head}\n\n${quotas}\n\n${formatUserCredits(view.credits)}`;
}

/** One key in a line: `map_key ****abcd`, `main`, `main-prev (expires 2026-...)`. */
function keySummary(key: ApiKeyListing): string {
  const masked = key.masked === null ? '' : ` ${key.masked}`;
  const state = key.state === 'active' ? (key.expires_at === null ? '' : ` (expires ${key.expires_at})`) : ` (${key.state})`;
  return `${key.name}${masked}${state}`;
}

/** A user's API keys, masked. */
export function formatApiKeys(keys: readonly ApiKeyListing[]): string {
  if (keys.length === 0) return 'no API keys';
  return table([
    ['name', 'form', 'masked', 'created', 'expires', 'state'],
    ...keys.map((key) => [key.name, key.form, key.masked, key.created_at, key.expires_at, key.state]),
  ]);
}

/** An org with its members' use. */
export function formatOrg(view: OrgView): string {
  const head = table([
    ['org', view.orgname],
    ['period_end_date', view.period_end_date],
  ]);
  const quotas = quotaTable(view, [view.geocoder_provider, view.isolines_provider, view.routing_provider]);
  const members =
    view.members.length === 0
      ? 'no members'
      : table([
          ['member', ...BLOCKS],
          ...view.members.map((member) => [member.username, member.geocoding, member.here_isolines, member.mapzen_routing]),
        ]);
  return `${head}\n\n${quotas}\n\n${formatOrgCredits(view.credits)}\n\n${members}`;
}

/** An org's credit settings. */
export function formatOrgCredits(credits: OrgCredits): string {
  return table([
    ['org', 'budgeting', 'credits', 'default_limit'],
    [credits.orgname, credits.enabled ? 'on' : 'off', credits.credits, credits.defaultLimit],
  ]);
}

/** A member's credits; -1 means no limit. */
export function formatUserCredits(credits: UserCredits): string {
  return table([
    ['user', 'org', 'budgeting', 'assigned', 'spent', 'available'],
    [
      credits.username,
      credits.organization,
      credits.enabled ? 'on' : 'off',
      credits.assignedCredits,
      credits.spentCredits,
      credits.availableCredits,
    ],
  ]);
}

/** Current-cycle counters, one row per kind. */
export function formatUsage(usage: readonly UsageSummary[]): string {
  return table([
    ['kind', 'service_type', 'cycle_start', 'used', 'success', 'empty', 'failed', 'total', 'isolines'],
    ...usage.map((summary) => [
      summary.kind,
      summary.serviceType,
      summary.cycleStart.toISOString().slice(0, 10),
      summary.used,
      summary.metrics.success_responses,
      summary.metrics.empty_responses,
      summary.metrics.failed_responses,
      summary.metrics.total_requests,
      summary.metrics.isolines_generated,
    ]),
  ]);
}
