// A Sentinel failover under load: workers consume against a hard quota while the master changes; returns served vs counted vs quota.
import type { Redis } from 'ioredis';
import { Tollgate, TollgateError, type Admission, type TollgateOptions } from '../../src/index.js';
import { closeRedis } from '../../src/redis/topology.js';
import { writeUser } from './fixtures.js';
import type { TestSentinelGroup } from './redis-sentinel.js';

/** The fixed "now" of a load run: the 22nd of November 2026, month key 202611. */
export const LOAD_NOW = Date.parse('2026-11-22T12:00:00Z');

/** What a load run saw: every figure the failover report needs. */
export interface LoadFigures {
  readonly quota: number;
  /** Units any caller was told it could use (admissions answered `allowed`), top-up included. */
  served: number;
  /** Of those, served by the workers after every sentinel named the new master (top-up excluded). */
  servedAfterFailover: number;
  /** success + empty on the master after the run: what Redis kept. */
  counted: number;
  /** Errors consume raised, by code. */
  readonly errors: Record<string, number>;
  /** How long SENTINEL FAILOVER (or the kill) took until every sentinel named the new master. */
  failoverMs: number;
  /** From SENTINEL FAILOVER until every worker was denied by the new master. */
  drainMs: number;
}

/** What {@link failoverUnderLoad} runs against. */
export interface FailoverLoad {
  readonly group: TestSentinelGroup;
  /** A client on the current master, for setting up and reading back. */
  readonly admin: Redis;
  /** Makes a worker's client (as the demo or the CLI would build it). */
  readonly client: () => Redis;
  readonly user: string;
  readonly quota: number;
  /** Extra Tollgate options for every worker (e.g. `waitForReplicas`). */
  readonly options?: Partial<TollgateOptions>;
  /** Workers, each on its own client. Default 20. */
  readonly workers?: number;
  /**
   * Pause of each worker between consumes, so the load spans the failover whatever the
   * engine's speed: 20 workers at 10 ms ask for at most 2,000 units a second. Default 10.
   */
  readonly paceMs?: number;
  /** How the master changes. Default `failover`: SENTINEL FAILOVER; `kill`: SIGKILL the master. */
  readonly trigger?: 'failover' | 'kill';
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Workers, each on its own sentinel-built client, consume 1 unit at a time against a hard
 * quota of `user` (an admission is charged as a success; nothing to settle). Once a quarter of the quota is
 * served, SENTINEL FAILOVER (or a SIGKILL of the master); the workers go on until they are denied after it. Then, once
 * every refund of a lost reply is done (close() waits for them), one fresh client tops up
 * until denied, so the new master's count ends at the quota whatever was lost, and `served`
 * holds every unit any caller was told it could use.
 */
export async function failoverUnderLoad(load: FailoverLoad): Promise<LoadFigures> {
  const { user, quota } = load;
  await writeUser(load.admin, user, { geocoding_quota: String(quota) });
  const options = { clock: () => LOAD_NOW, timeoutMs: 2000, ...load.options };
  const clients = Array.from({ length: load.workers ?? 20 }, load.client);
  const gates = clients.map((client) => new Tollgate({ ...options, redis: client }));
  const figures: LoadFigures = { quota, served: 0, counted: 0, errors: {}, failoverMs: 0, drainMs: 0, servedAfterFailover: 0 };
  const tally = (bag: Record<string, number>, key: string): void => {
    bag[key] = (bag[key] ?? 0) + 1;
  };
  const codeOf = (error: unknown): string => (error instanceof TollgateError ? error.code : String(error));
  let failedOver = false;
  const stopAt = Date.now() + 30_000;
  const worker = async (gate: Tollgate): Promise<void> => {
    while (Date.now() < stopAt) {
      let admission: Admission;
      try {
        admission = await gate.consume({ user, kind: 'geocoding' });
      } catch (error) {
        tally(figures.errors, codeOf(error));
        await pause(20);
        continue;
      }
      // An admission is charged as a success: a served request needs no settle.
      if (admission.allowed) {
        figures.served += 1;
        if (failedOver) figures.servedAfterFailover += 1;
        await pause(load.paceMs ?? 10);
      } else if (failedOver) {
        return;
      } else {
        await pause(20);
      }
    }
  };
  try {
    const running = Promise.all(gates.map(worker));
    while (figures.served < quota / 4 && Date.now() < stopAt) await pause(5);
    const startedMs = performance.now();
    await (load.trigger === 'kill' ? load.group.killMaster() : load.group.failover());
    figures.failoverMs = Math.round(performance.now() - startedMs);
    failedOver = true;
    await running;
    figures.drainMs = Math.round(performance.now() - startedMs);
  } finally {
    await Promise.all(gates.map((gate) => gate.close()));
    await Promise.all(clients.map(closeRedis));
  }
  const fresh = load.client();
  const gate = new Tollgate({ ...options, redis: fresh });
  try {
    while ((await gate.consume({ user, kind: 'geocoding' })).allowed) figures.served += 1;
  } finally {
    await gate.close();
    await closeRedis(fresh);
  }
  const [success, empty] = await Promise.all(
    ['success_responses', 'empty_responses'].map((metric) => load.admin.zscore(`user:${user}:geocoder_here:${metric}:202611`, '22')),
  );
  figures.counted = Number(success ?? 0) + Number(empty ?? 0);
  return figures;
}
