import type { OriginSpec } from "../config/origin-list";

/**
 * The order a request tries a route's origins in: every origin of the lowest priority number
 * first, then the next priority, and so on. Within a priority the order is drawn by weight without
 * replacement, so an origin is first for weight / (sum of its priority's weights) of requests and
 * a failover goes to the others of the same priority before a lower one. `random` gives numbers
 * in [0, 1) (`Math.random` in the Worker; a seeded one in tests).
 */
export function orderOrigins<T extends Pick<OriginSpec, "priority" | "weight">>(origins: readonly T[], random: () => number): T[] {
	const priorities = [...new Set(origins.map((origin) => origin.priority))].sort((a, b) => a - b);
	const order: T[] = [];
	for (const priority of priorities) {
		const left = origins.filter((origin) => origin.priority === priority);
		while (left.length > 0) {
			const total = left.reduce((sum, origin) => sum + origin.weight, 0);
			let point = random() * total;
			let pick = left.length - 1;
			for (let index = 0; index < left.length; index++) {
				point -= (left[index] as T).weight;
				if (point < 0) {
					pick = index;
					break;
				}
			}
			order.push(...left.splice(pick, 1));
		}
	}
	return order;
}
