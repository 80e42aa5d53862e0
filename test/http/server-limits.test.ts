// The demo server bounds slow and piled-up clients: a trickled body is cut off with 408, connections past the cap are closed.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ACCOUNTS } from '../../demo/src/bootstrap.js';
import { startDemo, type DemoService } from '../../demo/src/service.js';
import { startRedisServer, type TestRedis } from '../helpers/redis-server.js';

let redis: TestRedis;
let service: DemoService;

beforeAll(async () => {
  redis = await startRedisServer();
  service = await startDemo({
    port: 0,
    host: '127.0.0.1',
    redisUrl: redis.url,
    serverLimits: { headersTimeoutMs: 300, requestTimeoutMs: 800, maxConnections: 4 },
    log: () => undefined,
    logger: SILENT_LOGGER,
  });
});
afterAll(async () => {
  await service?.shutdown();
  await redis?.stop();
});

/** Opens a raw connection to the demo. */
async function open(): Promise<Socket> {
  const { hostname, port } = new URL(service.url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return socket;
}

/** Resolves with what the server sent once it closed the connection, or `null` if it is still open after `withinMs`. */
function closedWithin(socket: Socket, withinMs: number): Promise<string | null> {
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
  });
}

describe('demo server limits', () => {
  it('cuts off a POST whose body trickles in one byte at a time: 408, connection closed', async () => {
    const socket = await open();
    const key = service.accounts.user.key as string;
    socket.write(
      `POST /u/${DEMO_ACCOUNTS.user}/api/v1/geocode?api_key=${key} HTTP/1.1\r\nHost: demo\r\n` +
        'Content-Type: application/json\r\nContent-Length: 65000\r\n\r\n{',
    );
    const trickle = setInterval(() => socket.writable && socket.write(' '), 100);
    try {
      // Far longer than the 800 ms request timeout, far shorter than Node's default of 300 s.
      const answer = await closedWithin(socket, 8000);
      expect(answer).not.toBeNull();
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });

  it('closes connections past maxConnections at once, and serves again when they go', async () => {
    const held = [await open(), await open(), await open(), await open()];
    try {
      const extra = await open();
      expect(await closedWithin(extra, 2000)).toBe('');
    } finally {
      for (const socket of held) socket.destroy();
    }
    // Once those are gone, new clients are served (the server may take a moment to see them close;
    // a connection it dropped meanwhile is given up on after 1 s).
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt += 1) {
      status = await fetch(`${service.url}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(status).toBe(200);
  });
});
