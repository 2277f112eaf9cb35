import { inFlightGroup } from "../config/guard-config";
import { type Admitted, admitToOrigin, type Overload } from "../overload/admission";
import type { OriginPool } from "../origins/origin-pool";
import type { Exchange } from "./exchange";

/**
 * Stage 1, before any key lookup or body byte: takes a slot for the request, or answers `529`
 * when the guard, the route's group or the origin's breaker (every origin's, for a route with an
 * origins list) cannot take it. Shedding must cost next to nothing. The slot is freed the moment
 * the client leaves, even if the runtime then stops running the request.
 */
export function shed(exchange: Exchange, overload: Overload, pool?: OriginPool): Admitted {
	const { request, route, state, target } = exchange;
	const slot = pool ? pool.admit(inFlightGroup(route)) : admitToOrigin(overload, inFlightGroup(route), target.name, state);
	request.signal?.addEventListener("abort", () => slot.release(), { once: true });
	return slot;
}
