// An ioredis client that records the name of every command it sends: what a call costs in round trips.
import { Redis } from 'ioredis';

/** A client for `url` and the list of command names it has sent so far (clear it to start a count). */
export function countingClient(url: string): { client: Redis; sent: string[] } {
  const client = new Redis(url);
  const sent: string[] = [];
  const original = client.sendCommand.bind(client);
  client.sendCommand = ((command: { name: string }) => {
    sent.push(command.name);
    return original(command as never);
  }) as typeof client.sendCommand;
  return { client, sent };
}
