// A writable stream that keeps what is written, for code that prints (CLI, reports).
import { Writable } from 'node:stream';

/** A stream collecting every chunk, and the text written so far. */
export function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return { stream, text: () => chunks.join('') };
}
