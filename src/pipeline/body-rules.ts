import { type BodyPlan, planBody } from "../body-limit/body-limit";
import type { Exchange } from "./exchange";

/**
 * Stage 4: everything about the body that the request line and headers decide, before the origin
 * is contacted: a malformed length (`400`), a body where the route takes none or a declared length
 * over the cap (`413`), an encoding the route does not decode (`415`); and how the body will
 * travel (untouched, counted, none).
 */
export function bodyRules(exchange: Exchange): BodyPlan {
	const { request, route, config, state } = exchange;
	return planBody(request, route, state, { trustDeclaredLength: config.trustDeclaredLength, inspect: route.refuseLongNonStreaming });
}
