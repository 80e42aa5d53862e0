// Building blocks of the OpenAPI 3.1 descriptions: the problem+json schema and JSON bodies that carry a checked example.
import { z } from 'zod';
import 'zod-openapi';
import { PROBLEM_CONTENT_TYPE } from './problems.js';

/** An RFC 9457 problem body as every Tollgate HTTP error answers it. */
export const problemSchema = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().regex(/^ERR_TOLLGATE_[A-Z_]+$/),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details; `code` is a stable ERR_TOLLGATE_* code (docs/errors.md)' });

/**
 * A media type object whose example is kept next to its schema: the OpenAPI test parses
 * every such example with its schema, so the description never shows an example the code
 * would not accept or produce.
 */
export interface ExampleBody {
  readonly schema: z.ZodType;
  readonly example?: unknown;
}

/** `{ content: { [type]: { schema, example } } }`, the shape of a request body or a response. */
export function body(schema: z.ZodType, example?: unknown, type = 'application/json'): { content: Record<string, ExampleBody> } {
  return { content: { [type]: example === undefined ? { schema } : { schema, example } } };
}

/** A response with a JSON body. */
export function jsonResponse(description: string, schema: z.ZodType, example?: unknown, type = 'application/json') {
  return { description, ...body(schema, example, type) };
}

/** A problem+json response. */
export function problemResponse(description: string, example?: unknown) {
  return { description, ...body(problemSchema, example, PROBLEM_CONTENT_TYPE) };
}

/** Every `{ schema, example }` pair in a paths object, with where it sits, for the test that validates them. */
export function examplesIn(value: unknown, where = ''): Array<{ where: string; schema: z.ZodType; example: unknown }> {
  if (typeof value !== 'object' || value === null) return [];
  const record = value as Record<string, unknown>;
  if (record.schema instanceof z.ZodType && 'example' in record) {
    return [{ where, schema: record.schema, example: record.example }];
  }
  if (record instanceof z.ZodType) return [];
  return Object.entries(record).flatMap(([key, child]) => examplesIn(child, `${where}/${key}`));
}
