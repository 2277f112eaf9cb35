import { describe, expect, it } from "vitest";
import { DecodedKey } from "../../src/lib/json/decoded-key";

const utf8 = (text: string) => new TextEncoder().encode(text);

/** A key of `capacity` bytes fed `text` as `\u` escapes, one UTF-16 code unit each; whether every unit was taken. */
function escaped(text: string, capacity = 64): { key: DecodedKey; taken: boolean } {
	const key = new DecodedKey(capacity);
	let taken = true;
	for (let at = 0; at < text.length && taken; at++) taken = key.unit(text.charCodeAt(at));
	return { key, taken };
}

describe("an object key written with \\u escapes", () => {
	it.each([
		["ASCII", "model"],
		["the last one-byte character and the first two-byte one", "\u007f\u0080"],
		["the last two-byte character and the first three-byte one", "\u07ff\u0800"],
		["the characters around the surrogates", "\ud7ff\ue000\uffff"],
		["a surrogate pair, the first and last astral characters", "\u{10000}\u{1f600}\u{10ffff}"],
		["a mixed key", "m\u00f6d\u20acl\u{1f600}"],
	])("decodes %s to the UTF-8 bytes JSON.parse's key has", (_name, text) => {
		const { key, taken } = escaped(text);
		expect(taken).toBe(true);
		expect(key.whole).toBe(true);
		expect(key.equals(utf8(text))).toBe(true);
		expect(key.equals(utf8(`${text}x`))).toBe(false);
	});

	it("can no longer match after a lone surrogate: a low half alone, or a high half followed by anything but a low one", () => {
		expect(escaped("\udc00").taken).toBe(false);
		expect(escaped("\udfff").taken).toBe(false);
		expect(escaped("\ud800\u0041").taken).toBe(false);
		expect(escaped("\udbff\ue000").taken).toBe(false);
		expect(escaped("\ud800\ud800").taken).toBe(false);
		const raw = escaped("\ud83d").key;
		expect(raw.byte(0x41)).toBe(false);
	});

	it("is not whole while a high surrogate waits for its low half", () => {
		const { key, taken } = escaped("a\udbff");
		expect(taken).toBe(true);
		expect(key.whole).toBe(false);
		expect(key.unit(0xdc00)).toBe(true);
		expect(key.whole).toBe(true);
		expect(key.equals(utf8("a\u{10fc00}"))).toBe(true);
	});

	it("holds as many bytes as its capacity and refuses one more, a four-byte character included", () => {
		expect(escaped("\u{1f600}", 4)).toMatchObject({ taken: true });
		expect(escaped("\u{1f600}", 4).key.equals(utf8("\u{1f600}"))).toBe(true);
		expect(escaped("a\u{1f600}", 4).taken).toBe(false);
		// It says so at the high half already, when the four bytes cannot fit.
		expect(escaped("a\ud83d", 4).taken).toBe(false);
		expect(escaped("\ud83d", 4).taken).toBe(true);
		expect(escaped("\u20ac", 3).taken).toBe(true);
		expect(escaped("a\u20ac", 3).taken).toBe(false);
		expect(escaped("\u00e9", 2).taken).toBe(true);
		expect(escaped("a\u00e9", 2).taken).toBe(false);
		const full = new DecodedKey(2);
		expect([full.byte(0x61), full.byte(0x62), full.byte(0x63)]).toEqual([true, true, false]);
		expect(full.equals(utf8("ab"))).toBe(true);
	});

	it("starts over when reset, a waiting high surrogate forgotten", () => {
		const { key } = escaped("ab\ud800");
		key.reset();
		expect(key.whole).toBe(true);
		expect(key.byte(0x63)).toBe(true);
		expect(key.equals(utf8("c"))).toBe(true);
	});
});
