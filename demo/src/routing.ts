// Routing behind a provider interface, and the demo's straight-line approximation of a route.

/** How the traveller moves on a route. */
export type RouteMode = 'walk' | 'bicycle' | 'car';

/** Every route mode, in the order help texts list them. */
export const ROUTE_MODES: readonly RouteMode[] = Object.freeze(['walk', 'bicycle', 'car']);

/** A point as `[lat, lon]` in degrees, as the `from`/`to` parameters give it. */
export interface LatLon {
  readonly lat: number;
  readonly lon: number;
}

/** One routing request, already validated. */
export interface RouteRequest {
  readonly from: LatLon;
  readonly to: LatLon;
  readonly mode: RouteMode;
}

/** A route: its line and how long it is in metres and seconds. */
export interface Route {
  /** GeoJSON LineString coordinates, `[lon, lat]`. */
  readonly line: Array<[number, number]>;
  readonly distanceM: number;
  readonly durationS: number;
}

/**
 * A routing backend. The demo's {@link StraightLineRouting} needs no network; a real routing
 * engine (Valhalla, OSRM, HERE) implements the same interface and replaces it.
 */
export interface RoutingProvider {
  /** The provider's name, as an operator would put it in `routing_provider`. */
  readonly name: string;
  /** Whether routes follow a road network (`false`: crow-flies approximations). */
  readonly followsRoads: boolean;
  route(request: RouteRequest): Promise<Route>;
}

/** Mean Earth radius (IUGG), metres. */
const EARTH_RADIUS_M = 6_371_008.8;

/** Average straight-line speeds, m/s: 5 km/h on foot, 15 km/h by bicycle, 50 km/h by car. */
export const ROUTE_SPEEDS_MPS: Readonly<Record<RouteMode, number>> = Object.freeze({ walk: 5 / 3.6, bicycle: 15 / 3.6, car: 50 / 3.6 });

const toRadians = (degrees: number): number => (degrees * Math.PI) / 180;

/** Great-circle distance between two points, metres (haversine). */
export function greatCircleM(from: LatLon, to: LatLon): number {
  const dPhi = toRadians(to.lat - from.lat);
  const dLambda = toRadians(to.lon - from.lon);
  const a = Math.sin(dPhi / 2) ** 2 + Math.cos(toRadians(from.lat)) * Math.cos(toRadians(to.lat)) * Math.sin(dLambda / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/**
 * A straight line, not a route: the great-circle distance, and a duration at a constant
 * speed per mode. Roads are longer and slower; this only shows the shape of the API.
 */
export class StraightLineRouting implements RoutingProvider {
  readonly name = 'straightline';
  readonly followsRoads = false;

  async route(request: RouteRequest): Promise<Route> {
    const distanceM = greatCircleM(request.from, request.to);
    return {
      line: [
        [request.from.lon, request.from.lat],
        [request.to.lon, request.to.lat],
      ],
      distanceM: Math.round(distanceM),
      durationS: Math.round(distanceM / ROUTE_SPEEDS_MPS[request.mode]),
    };
  }
}
