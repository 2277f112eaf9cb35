import { describe, expect, it } from "vitest";
import { REVOCATION_TTL_MS } from "../../src/keys/revocations";
import { RevokedKeyError, revokedKeyRefusal } from "../../src/keys/revoked";
import type { LimiterClient } from "../../src/limits/client/limiter-client";
import { client, type FakeClock, fakeClock, limits, newOrg, tierTable, usageObject } from "../limits/helpers";

type Outcome = "admitted" | "limited" | "revoked";

async function attempt(limiter: LimiterClient, orgId: string, keyId: string): Promise<Outcome> {
	try {
		return (await limiter.admit({ orgId, keyId, inputTokens: 0 })).admitted ? "admitted" : "limited";
	} catch (error) {
		// The limiter says so; keys/ answers it (401, below).
		if (error instanceof RevokedKeyError) return "revoked";
		throw error;
	}
}

/** Revokes `keyId` the way the admin API and npm run keys do: on the organisation's usage object. */
async function revokeOnObject(orgId: string, keyId: string, clock: FakeClock): Promise<void> {
	const stub = await usageObject(orgId, clock);
	await stub.revokeKey({ keyId });
}

describe("fast revocation: every isolate learns a revoked key on its next call to the usage object", () => {
	it("exact mode: the next request is refused (401), uncharged, while other keys go on", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({ requests_per_minute: 100 }), clock);
		expect(await attempt(limiter, orgId, "key_leaked")).toBe("admitted");
		await revokeOnObject(orgId, "key_leaked", clock);
		expect(await attempt(limiter, orgId, "key_leaked")).toBe("revoked");
		expect(await attempt(limiter, orgId, "key_leaked")).toBe("revoked");
		const other = await limiter.admit({ orgId, keyId: "key_other", inputTokens: 0 });
		// 100 - the first request - this one: the refused ones took nothing.
		expect(other.snapshot.requests.remaining).toBe(98);
	});

	it("lease mode: a revoked key stops within 10 s on an isolate spending a slice, at its next renewal", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const ttlMs = 5000;
		// A slice of 5% of 600 a minute (30 requests) outlasts the 5 s lease at one request a second.
		const limiter = client(tierTable({ requests_per_minute: 600 }), clock, { mode: "lease", lease: { ttlMs } });
		// Warm up, so the isolate holds a slice of several requests (slices start at one request).
		for (let i = 0; i < 40; i++) {
			expect(await attempt(limiter, orgId, i % 2 === 0 ? "key_leaked" : "key_other")).toBe("admitted");
			clock.advance(10);
		}
		await Promise.all(limiter.background);
		const callsBefore = limiter.stats.objectCalls;
		await revokeOnObject(orgId, "key_leaked", clock);
		const revokedAt = clock.now;
		const seen: { at: number; leaked: Outcome; other: Outcome }[] = [];
		for (let step = 0; step < 30; step++) {
			clock.advance(500);
			seen.push({ at: clock.now - revokedAt, leaked: await attempt(limiter, orgId, "key_leaked"), other: await attempt(limiter, orgId, "key_other") });
			await Promise.all(limiter.background);
		}
		const firstRefusal = seen.find((entry) => entry.leaked === "revoked");
		expect(firstRefusal, JSON.stringify(seen)).toBeDefined();
		// Admitted from the slice it held until the slice's lease ran out and it asked the object again.
		expect(seen[0]?.leaked).toBe("admitted");
		expect(firstRefusal?.at).toBeLessThanOrEqual(10_000);
		expect(firstRefusal?.at).toBeLessThanOrEqual(ttlMs + 500);
		expect(limiter.stats.objectCalls).toBeGreaterThan(callsBefore);
		// Refused from then on; the organisation's other key was never refused.
		expect(seen.filter((entry) => entry.at >= (firstRefusal?.at ?? 0)).every((entry) => entry.leaked === "revoked")).toBe(true);
		expect(seen.every((entry) => entry.other === "admitted")).toBe(true);
	});

	it("keys/ answers the limiter's word with 401, worded as for a disabled key, and the log's auth decision", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await revokeOnObject(orgId, "key_leaked", clock);
		const limiter = client(tierTable({ requests_per_minute: 100 }), clock);
		const error = await limiter.admit({ orgId, keyId: "key_leaked", inputTokens: 0 }).then(
			() => undefined,
			(thrown: unknown) => thrown,
		);
		expect(error).toBeInstanceOf(RevokedKeyError);
		const refusal = revokedKeyRefusal(error as RevokedKeyError);
		expect({ status: refusal.status, message: refusal.message, type: refusal.type, detail: refusal.detail }).toEqual({
			status: 401,
			message: "invalid x-api-key",
			type: "authentication_error",
			detail: { auth: { outcome: "revoked-key", org_id: orgId, key_id: "key_leaked" } },
		});
	});

	it("an enabled key is taken off the list, and a listing lapses after its time (KV has caught up by then)", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const limiter = client(tierTable({ requests_per_minute: 100 }), clock);
		await stub.revokeKey({ keyId: "key_a" });
		expect(await attempt(limiter, orgId, "key_a")).toBe("revoked");
		await stub.restoreKey({ keyId: "key_a" });
		// This isolate refuses locally until it hears again; another key's call brings the new list.
		expect(await attempt(limiter, orgId, "key_b")).toBe("admitted");
		expect(await attempt(limiter, orgId, "key_a")).toBe("admitted");
		await stub.revokeKey({ keyId: "key_c" });
		expect((await stub.consoleReport({ pools: [limits()], minutes: 1, days: 1 })).revocations.keys.map((key) => key.keyId)).toEqual(["key_c"]);
		clock.advance(REVOCATION_TTL_MS);
		expect((await stub.consoleReport({ pools: [limits()], minutes: 1, days: 1 })).revocations.keys).toEqual([]);
	});
});
