import { describe, expect, it } from "vitest";
import { orderOrigins } from "../../src/origins/origin-order";
import { seededRandom } from "../seeded-random";

const origin = (name: string, priority: number, weight: number) => ({ name, priority, weight });

describe("the order a request tries a route's origins in", () => {
	it("picks origins of one priority first by weight: 3:1 over 1,000 picks is 750 ± 45 (about 3.3 standard deviations)", () => {
		const random = seededRandom(23);
		const origins = [origin("a", 1, 3), origin("b", 1, 1)];
		let firstA = 0;
		for (let pick = 0; pick < 1000; pick++) if (orderOrigins(origins, random)[0]?.name === "a") firstA++;
		expect(firstA).toBeGreaterThanOrEqual(705);
		expect(firstA).toBeLessThanOrEqual(795);
	});

	it("spreads three weights 1:2:7 in proportion over 1,000 picks (each within 45 of its share)", () => {
		const random = seededRandom(7);
		const origins = [origin("a", 1, 1), origin("b", 1, 2), origin("c", 1, 7)];
		const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
		for (let pick = 0; pick < 1000; pick++) {
			const name = orderOrigins(origins, random)[0]?.name ?? "";
			counts[name] = (counts[name] ?? 0) + 1;
		}
		expect(Math.abs((counts.a ?? 0) - 100)).toBeLessThanOrEqual(45);
		expect(Math.abs((counts.b ?? 0) - 200)).toBeLessThanOrEqual(45);
		expect(Math.abs((counts.c ?? 0) - 700)).toBeLessThanOrEqual(45);
	});

	it("tries every origin of a lower priority number before any of a higher one, whatever the weights", () => {
		const random = seededRandom(1);
		const origins = [origin("backup", 2, 1000), origin("main-a", 1, 1), origin("last", 5, 1), origin("main-b", 1, 1)];
		for (let pick = 0; pick < 200; pick++) {
			const order = orderOrigins(origins, random).map((entry) => entry.name);
			expect(order.slice(2)).toEqual(["backup", "last"]);
			expect([...order.slice(0, 2)].sort()).toEqual(["main-a", "main-b"]);
		}
	});

	it("lists each origin exactly once, so a failover never goes back to the origin that failed", () => {
		const random = seededRandom(99);
		const origins = [origin("a", 1, 5), origin("b", 1, 1), origin("c", 1, 1)];
		for (let pick = 0; pick < 100; pick++) expect(orderOrigins(origins, random).map((entry) => entry.name).sort()).toEqual(["a", "b", "c"]);
	});
});
