// A TCP proxy in front of a real Redis that can swallow replies, to lose answers the way a network does.
import { createServer, Socket, type AddressInfo } from 'node:net';

/** A running proxy. */
export interface LossyProxy {
  readonly url: string;
  /** While on, bytes from Redis to clients are dropped: commands still run, their replies are lost. */
  dropReplies(on: boolean): void;
  /** Closes every client connection (clients see a reset and reconnect). */
  cutConnections(): void;
  /** While on, Redis is away: connections are cut and new ones closed at once. */
  refuseConnections(on: boolean): void;
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port forwarding to the Redis at `targetUrl`. */
export async function startLossyProxy(targetUrl: string): Promise<LossyProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port || 6379);
  let dropping = false;
  let refusing = false;
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = new Socket();
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    upstream.connect(targetPort, target.hostname);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!dropping) client.write(chunk);
    });
    const close = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  const cutConnections = (): void => {
    for (const [client, upstream] of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    dropReplies: (on) => {
      dropping = on;
    },
    cutConnections,
    refuseConnections: (on) => {
      refusing = on;
      if (on) cutConnections();
    },
    close: async () => {
      cutConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
