// Isolines behind a provider interface, and the demo's straight-line approximation of them.

/** How a range is measured: metres of distance, or seconds of travel. */
export type IsolineType = 'isodistance' | 'isochrone';
/** How the traveller moves. */
export type TravelMode = 'walk' | 'car';

/** One isolines request, already validated. */
export interface IsolinesRequest {
  readonly lat: number;
  readonly lon: number;
  /** Metres for `isodistance`, seconds for `isochrone`; one polygon per range, in this order. */
  readonly ranges: readonly number[];
  readonly type: IsolineType;
  readonly mode: TravelMode;
}

/** A GeoJSON Polygon's coordinates: rings of `[lon, lat]`, closed, the exterior counter-clockwise. */
export type PolygonCoordinates = Array<Array<[number, number]>>;

/** The area reachable within one range. */
export interface Isoline {
  readonly range: number;
  readonly polygon: PolygonCoordinates;
}

/**
 * An isolines backend. The demo's {@link StraightLineIsolines} needs no network; a real
 * routing engine (HERE, Valhalla, OSRM) implements the same interface and replaces it.
 */
export interface IsolinesProvider {
  /** The provider's name, as an operator would put it in `isolines_provider`. */
  readonly name: string;
  /** Whether the polygons follow a road network (`false`: crow-flies approximations). */
  readonly followsRoads: boolean;
  isolines(request: IsolinesRequest): Promise<readonly Isoline[]>;
}

/** Mean Earth radius (IUGG), metres. */
const EARTH_RADIUS_M = 6_371_008.8;

/** Average straight-line speeds, m/s: 5 km/h on foot, 50 km/h by car. */
export const STRAIGHT_LINE_SPEEDS_MPS: Readonly<Record<TravelMode, number>> = Object.freeze({ walk: 5 / 3.6, car: 50 / 3.6 });

const toRadians = (degrees: number): number => (degrees * Math.PI) / 180;
const toDegrees = (radians: number): number => (radians * 180) / Math.PI;

/** The point `distanceM` metres from (lat, lon) along `bearing` (radians from north), on a sphere. */
export function destination(lat: number, lon: number, distanceM: number, bearing: number): [number, number] {
  const angular = distanceM / EARTH_RADIUS_M;
  const phi1 = toRadians(lat);
  const lambda1 = toRadians(lon);
  const phi2 = Math.asin(Math.sin(phi1) * Math.cos(angular) + Math.cos(phi1) * Math.sin(angular) * Math.cos(bearing));
  const lambda2 = lambda1 + Math.atan2(
    Math.sin(bearing) * Math.sin(angular) * Math.cos(phi1),
    Math.cos(angular) - Math.sin(phi1) * Math.sin(phi2),
  );
  const lonOut = ((toDegrees(lambda2) + 540) % 360) - 180;
  return [Number(lonOut.toFixed(6)), Number(toDegrees(phi2).toFixed(6))];
}

/**
 * Circles, not isolines: every point within the range as the crow flies, at a constant speed
 * for isochrones. Real reachability along roads is smaller and irregular; this only shows the
 * shape of the API. Circles crossing the antimeridian or a pole are not split.
 */
export class StraightLineIsolines implements IsolinesProvider {
  readonly name = 'straightline';
  readonly followsRoads = false;
  readonly #vertices: number;

  constructor(vertices = 64) {
    this.#vertices = vertices;
  }

  /** The radius a range stands for, in metres. */
  radiusM(range: number, type: IsolineType, mode: TravelMode): number {
    return type === 'isodistance' ? range : range * STRAIGHT_LINE_SPEEDS_MPS[mode];
  }

  async isolines(request: IsolinesRequest): Promise<readonly Isoline[]> {
    return request.ranges.map((range) => {
      const radius = this.radiusM(range, request.type, request.mode);
      const ring: Array<[number, number]> = [];
      // Bearings run clockwise from north; walking them backwards gives the counter-clockwise ring RFC 7946 asks for.
      for (let i = this.#vertices; i > 0; i -= 1) {
        ring.push(destination(request.lat, request.lon, radius, (2 * Math.PI * i) / this.#vertices));
      }
      ring.push(ring[0] as [number, number]);
      return { range, polygon: [ring] };
    });
  }
}
