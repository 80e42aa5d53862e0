// Validation of the demo's query strings and bodies: every bad input becomes a 400 before anything is counted.
import { z } from 'zod';
import { badRequest, type HttpProblem } from 'tollgate';
import type { IsolineType, IsolinesRequest, TravelMode } from './isolines.js';
import { ROUTE_MODES, type LatLon, type RouteMode, type RouteRequest } from './routing.js';

/** Limits of the demo's inputs. */
export interface DemoLimits {
  /** Most addresses in one bulk geocode. */
  readonly maxBulk: number;
  /** Most ranges in one isolines request. */
  readonly maxRanges: number;
  /** Largest JSON body accepted, in bytes. */
  readonly maxBodyBytes: number;
  /** Most results of one forward geocode. */
  readonly maxResults: number;
  /** Largest isodistance range, metres. */
  readonly maxDistanceM: number;
  /** Largest isochrone range, seconds. */
  readonly maxTimeS: number;
}

/** The demo's defaults. */
export const DEFAULT_LIMITS: DemoLimits = Object.freeze({
  maxBulk: 100,
  maxRanges: 5,
  maxBodyBytes: 64 * 1024,
  maxResults: 20,
  maxDistanceM: 100_000,
  maxTimeS: 4 * 3600,
});

/** Schema of {@link DemoLimits} overrides: unknown keys rejected. */
export const limitsSchema = z.strictObject({
  maxBulk: z.number().int().min(1).max(10_000).optional(),
  maxRanges: z.number().int().min(1).max(100).optional(),
  maxBodyBytes: z.number().int().min(256).max(10 * 1024 * 1024).optional(),
  maxResults: z.number().int().min(1).max(1000).optional(),
  maxDistanceM: z.number().int().min(1).max(1_000_000).optional(),
  maxTimeS: z.number().int().min(1).max(86_400).optional(),
});

/** Longest address or query accepted. */
export const MAX_QUERY_LENGTH = 200;

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;
const POSITIVE_INTEGER = /^[1-9]\d{0,9}$/;

type Query = Record<string, unknown>;

function invalid(parameter: string, detail: string): HttpProblem {
  return badRequest(detail, 'invalid-parameter', { parameter });
}

/** One string parameter given at most once; `undefined` when absent. */
function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(name, `${name} must be given once`);
  return value;
}

function text(parameter: string, value: string | undefined): string {
  const trimmed = value?.trim() ?? '';
  if (trimmed.length === 0) throw invalid(parameter, `${parameter} is required and must not be empty`);
  if (trimmed.length > MAX_QUERY_LENGTH) throw invalid(parameter, `${parameter} must be at most ${MAX_QUERY_LENGTH} characters`);
  return trimmed;
}

function coordinate(query: Query, name: 'lat' | 'lon', limit: number): number {
  const raw = single(query, name);
  if (raw === undefined || raw === '') throw invalid(name, `${name} is required`);
  const value = Number(raw);
  if (!DECIMAL.test(raw) || !Number.isFinite(value)) throw invalid(name, `${name} must be a decimal number`);
  if (value < -limit || value > limit) throw invalid(name, `${name} must be between -${limit} and ${limit}`);
  return value;
}

function oneOf<T extends string>(query: Query, name: string, allowed: readonly T[], fallback: T): T {
  const raw = single(query, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw invalid(name, `${name} must be one of ${allowed.join(', ')}`);
  return raw as T;
}

/** A validated forward geocode. */
export interface GeocodeInput {
  readonly q: string;
  readonly limit: number;
  /** ISO 3166-1 alpha-2 code to keep matches in, upper case; absent for any country. */
  readonly country?: string;
}

const COUNTRY_CODE = /^[A-Za-z]{2}$/;
const LAT_LON = /^\s*([^,\s]+)\s*,\s*([^,\s]+)\s*$/;

/** `lat,lon` in degrees, each a plain decimal within range. */
function latLon(query: Query, name: 'from' | 'to'): LatLon {
  const raw = single(query, name);
  if (raw === undefined || raw.trim() === '') throw invalid(name, `${name} is required, as lat,lon`);
  const match = LAT_LON.exec(raw);
  const parts = match === null ? null : [match[1] as string, match[2] as string];
  if (parts === null || !parts.every((part) => DECIMAL.test(part))) throw invalid(name, `${name} must be lat,lon in decimal degrees`);
  const [lat, lon] = parts.map(Number) as [number, number];
  if (lat < -90 || lat > 90 || lon < -180 || lon > 180) throw invalid(name, `${name} must have a latitude within ±90 and a longitude within ±180`);
  return { lat, lon };
}

/** `?from=lat,lon&to=lat,lon&mode=walk|bicycle|car (default car)`. */
export function parseRouteQuery(query: Query): RouteRequest {
  const from = latLon(query, 'from');
  const to = latLon(query, 'to');
  const mode = oneOf<RouteMode>(query, 'mode', ROUTE_MODES, 'car');
  return { from, to, mode };
}

/** `?q=<name>[, CC]&limit=<1..maxResults, default 5>&country=<CC>`. */
export function parseGeocodeQuery(query: Query, limits: DemoLimits): GeocodeInput {
  const q = text('q', single(query, 'q'));
  const rawCountry = single(query, 'country');
  if (rawCountry !== undefined && !COUNTRY_CODE.test(rawCountry)) throw invalid('country', 'country must be a two-letter ISO 3166-1 code, such as DE');
  const rawLimit = single(query, 'limit');
  let limit = Math.min(5, limits.maxResults);
  if (rawLimit !== undefined) {
    if (!POSITIVE_INTEGER.test(rawLimit) || Number(rawLimit) > limits.maxResults) {
      throw invalid('limit', `limit must be an integer from 1 to ${limits.maxResults}`);
    }
    limit = Number(rawLimit);
  }
  return rawCountry === undefined ? { q, limit } : { q, limit, country: rawCountry.toUpperCase() };
}

/** `{"addresses": ["Madrid, ES", "Lyon"]}`: 1 to maxBulk non-empty strings. */
export function parseBulkBody(body: unknown, limits: DemoLimits): readonly string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('Expected a JSON object {"addresses": [...]} with Content-Type: application/json', 'invalid-body');
  }
  const addresses = (body as Record<string, unknown>).addresses;
  const extra = Object.keys(body).filter((key) => key !== 'addresses');
  if (extra.length > 0) throw badRequest('The body may only contain "addresses"', 'invalid-body');
  if (!Array.isArray(addresses)) throw badRequest('"addresses" must be a list of strings', 'invalid-body');
  if (addresses.length === 0) throw badRequest('"addresses" must not be empty', 'invalid-body');
  if (addresses.length > limits.maxBulk) {
    throw badRequest(`At most ${limits.maxBulk} addresses per request`, 'bulk-too-large', { maxBulk: limits.maxBulk });
  }
  return addresses.map((address, index) => {
    if (typeof address !== 'string') throw badRequest(`addresses[${index}] must be a string`, 'invalid-body');
    return text(`addresses[${index}]`, address);
  });
}

/** `?lat=&lon=&range=300,600,900&type=isodistance|isochrone (default isochrone)&mode=walk|car (default car)`. */
export function parseIsolinesQuery(query: Query, limits: DemoLimits): IsolinesRequest {
  const lat = coordinate(query, 'lat', 90);
  const lon = coordinate(query, 'lon', 180);
  const type = oneOf<IsolineType>(query, 'type', ['isodistance', 'isochrone'], 'isochrone');
  const mode = oneOf<TravelMode>(query, 'mode', ['walk', 'car'], 'car');
  const raw = single(query, 'range');
  if (raw === undefined || raw.trim() === '') throw invalid('range', 'range is required: one or more positive integers, comma-separated');
  const parts = raw.split(',').map((part) => part.trim());
  if (parts.length > limits.maxRanges) {
    throw invalid('range', `At most ${limits.maxRanges} ranges per request`);
  }
  const max = type === 'isodistance' ? limits.maxDistanceM : limits.maxTimeS;
  const unit = type === 'isodistance' ? 'metres' : 'seconds';
  const ranges = parts.map((part) => {
    if (!POSITIVE_INTEGER.test(part)) throw invalid('range', 'Each range must be a positive integer');
    const value = Number(part);
    if (value > max) throw invalid('range', `Each ${type} range must be at most ${max} ${unit}`);
    return value;
  });
  return { lat, lon, ranges, type, mode };
}
