import { describe, expect, it } from "vitest";
import { BitStack } from "../../src/lib/json/bit-stack";

describe("the tokenizer's stack of open containers", () => {
	it("allocates nothing for the first 32 levels, then eight words for the next 256, and doubles past them", () => {
		const stack = new BitStack();
		stack.set(31, true);
		expect(stack.bytes).toBe(0);
		stack.set(32, true);
		expect(stack.bytes).toBe(32);
		stack.set(287, true);
		expect(stack.bytes).toBe(32);
		stack.set(288, true);
		expect(stack.bytes).toBe(64);
		expect([stack.get(31), stack.get(32), stack.get(287), stack.get(288), stack.get(33), stack.get(286)]).toEqual([true, true, true, true, false, false]);
	});

	it("reads every level never set as clear, deep ones before any is allocated too", () => {
		const stack = new BitStack();
		expect([stack.get(0), stack.get(31), stack.get(32), stack.get(100_000)]).toEqual([false, false, false, false]);
		expect(stack.bytes).toBe(0);
	});

	it("keeps every bit when a level far past its end is set at once", () => {
		const stack = new BitStack();
		stack.set(40, true);
		stack.set(10_000, true);
		expect([stack.get(40), stack.get(10_000), stack.get(9999), stack.get(10_001)]).toEqual([true, true, false, false]);
		expect(stack.get(1_000_000)).toBe(false);
		stack.set(10_000, false);
		expect(stack.get(10_000)).toBe(false);
		expect(stack.get(40)).toBe(true);
	});
});
