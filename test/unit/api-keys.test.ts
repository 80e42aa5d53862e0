// The key digest helper: the same bytes as a SHA-256 of the key's UTF-8, whatever the key holds.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_API_KEY_LENGTH, sha256, sha256Hex } from '../../src/core/api-keys.js';

const reference = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

describe('sha256', () => {
  it.each([
    ['an ASCII key', 'bench-key-123'],
    ['an empty string', ''],
    ['accented letters (two UTF-8 bytes each)', 'clé-ñandú'],
    ['Cyrillic and CJK', 'ключ-鍵'],
    ['an emoji (a surrogate pair)', 'key-🔑'],
    ['a longest key', 'k'.repeat(MAX_API_KEY_LENGTH)],
  ])('digests %s as SHA-256 of its UTF-8 bytes', (_name, value) => {
    const digest = sha256(value);
    expect(digest.length).toBe(32);
    expect(digest.equals(reference(value))).toBe(true);
    expect(sha256Hex(value)).toBe(reference(value).toString('hex'));
  });
});
