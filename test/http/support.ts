// Helpers for the HTTP tests: serve an Express app on a loopback port, call it, read counters.
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { afterAll } from 'vitest';

/** A served app: its base URL and a way to stop it. */
export interface Served {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Serves `app` on 127.0.0.1 at a port the OS picks. */
export async function serve(app: Express): Promise<Served> {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves `app` for the rest of the file. */
export function serveForFile(): { start(app: Express): Promise<Served> } {
  const started: Served[] = [];
  afterAll(async () => {
    await Promise.all(started.map((served) => served.close()));
  });
  return {
    start: async (app) => {
      const served = await serve(app);
      started.push(served);
      return served;
    },
  };
}

/** A response with its body parsed as JSON (or `null` when there is none). */
export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

/** Fetches and parses the body as JSON. */
export async function call(url: string, init?: RequestInit): Promise<Reply> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}
