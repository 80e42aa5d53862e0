// Every stable error code is documented: operators look codes up in docs/errors.md.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/core/errors.js';
import { HTTP_ERROR_CODES } from '../../src/http/problems.js';

const errorsDoc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('docs/errors.md', () => {
  it.each([...new Set([...Object.values(ERROR_CODES), ...Object.values(HTTP_ERROR_CODES)])])('documents %s', (code) => {
    expect(errorsDoc).toContain(`\`${code}\``);
  });
});
