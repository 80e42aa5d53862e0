// `npm run cluster:start` / `cluster:stop`: a throwaway local Redis Cluster (3 masters + 3 replicas) from redis-server, for the demo and for trying the cluster layout.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startClusterNodes } from '../test/helpers/cluster-nodes.js';
import { command } from '../test/helpers/redis-processes.js';

/** Where `start` records what it started, for `stop` (one local cluster per machine user). */
const STATE_FILE = join(tmpdir(), 'tollgate-local-cluster.json');

interface State {
  readonly dir: string;
  readonly nodes: ReadonlyArray<{ readonly port: number; readonly pid: number }>;
}

function readState(): State | null {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as State;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the redis-server on `port` is the process `pid` (so a reused pid or port is never touched). */
async function ours(port: number, pid: number): Promise<boolean> {
  try {
    const info = String(await command(port, 'INFO', 'server'));
    return /\r\nprocess_id:(\d+)\r\n/.exec(info)?.[1] === String(pid);
  } catch {
    return false;
  }
}

function basePort(): number {
  const raw = process.env.TOLLGATE_CLUSTER_PORT ?? '7000';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1024 || port > 65_530) throw new Error('TOLLGATE_CLUSTER_PORT must be an integer from 1024 to 65530');
  return port;
}

function seeds(state: State): string {
  return state.nodes.slice(0, 3).map((node) => `127.0.0.1:${node.port}`).join(',');
}

function printHowTo(state: State): void {
  const value = seeds(state);
  console.log(`REDIS_CLUSTER=${value}`);
  console.log('');
  console.log(`Demo on it:  REDIS_CLUSTER=${value} npm start`);
  console.log(`Inspect:     redis-cli -c -p ${state.nodes[0]?.port} CLUSTER NODES`);
  console.log('Stop it:     npm run cluster:stop');
}

async function start(): Promise<void> {
  const running = readState();
  if (running !== null && running.nodes.some((node) => alive(node.pid))) {
    console.log(`A local cluster is already running (logs in ${running.dir}).`);
    printHowTo(running);
    return;
  }
  const first = basePort();
  const ports = Array.from({ length: 6 }, (_, i) => first + i);
  for (const port of ports) {
    if (await command(port, 'PING').then(() => true, () => false)) {
      throw new Error(`something already answers on 127.0.0.1:${port}; stop it or set TOLLGATE_CLUSTER_PORT to another first port`);
    }
  }
  const cluster = await startClusterNodes({ masters: 3, replicasPerMaster: 1, ports, detached: true, dirPrefix: 'tollgate-local-cluster-' });
  const state: State = { dir: cluster.dir, nodes: cluster.nodes.map((node) => ({ port: node.port, pid: node.pid })) };
  writeFileSync(STATE_FILE, JSON.stringify(state));
  console.log(
    `Redis Cluster up in ${cluster.startupMs} ms: masters on 127.0.0.1:${ports.slice(0, 3).join(', ')}, replicas on ${ports.slice(3).join(', ')}. ` +
      `Data in memory only (gone on stop); logs in ${cluster.dir}.`,
  );
  printHowTo(state);
}

async function stop(): Promise<void> {
  const state = readState();
  if (state === null) {
    console.log('No local cluster recorded (nothing to stop).');
    return;
  }
  let stopped = 0;
  for (const node of state.nodes) {
    if (!alive(node.pid) || !(await ours(node.port, node.pid))) continue;
    process.kill(node.pid, 'SIGTERM');
    stopped += 1;
  }
  const deadline = Date.now() + 10_000;
  while (state.nodes.some((node) => alive(node.pid)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  rmSync(state.dir, { recursive: true, force: true });
  rmSync(STATE_FILE, { force: true });
  console.log(`Stopped ${stopped} redis-server process${stopped === 1 ? '' : 'es'} of the local cluster and removed ${state.dir}.`);
}

const action = process.argv[2];
try {
  if (action === 'start') await start();
  else if (action === 'stop') await stop();
  else throw new Error('usage: local-cluster.ts start|stop');
} catch (error) {
  console.error(`cluster:${action ?? '?'}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
