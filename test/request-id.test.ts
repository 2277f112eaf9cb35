import { describe, expect, it } from "vitest";
import { REQUEST_ID_PATTERN, newRequestId, requestIdTime } from "../src/request-id/request-id";

describe("request IDs", () => {
	it("are req_ followed by 24 base62 characters", () => {
		for (let i = 0; i < 1000; i++) expect(newRequestId()).toMatch(REQUEST_ID_PATTERN);
	});

	it("never repeat across many draws", () => {
		const ids = new Set(Array.from({ length: 20_000 }, () => newRequestId(1_700_000_000_000)));
		expect(ids.size).toBe(20_000);
	});

	it("sort by creation time as plain strings", () => {
		const times = [0, 1, 61, 62, 1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000, 4_000_000_000_000];
		const ids = times.map((time) => newRequestId(time));
		expect([...ids].sort()).toEqual(ids);
		expect(ids.map(requestIdTime)).toEqual(times);
	});

	it("draw their random part evenly over all 62 characters", () => {
		const counts = new Map<string, number>();
		for (let i = 0; i < 4000; i++) {
			for (const char of newRequestId().slice(12)) counts.set(char, (counts.get(char) ?? 0) + 1);
		}
		expect(counts.size).toBe(62);
		const expected = (4000 * 16) / 62;
		for (const count of counts.values()) expect(Math.abs(count - expected)).toBeLessThan(expected * 0.25);
	});
});
