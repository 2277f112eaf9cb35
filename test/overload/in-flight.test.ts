import { describe, expect, it } from "vitest";
import { type Admission, InFlightGate, type Ticket } from "../../src/overload/in-flight";
import { parseOverloadConfig } from "../../src/overload/overload-config";

function gate(raw: Record<string, unknown>): InFlightGate {
	return new InFlightGate(parseOverloadConfig(raw));
}

function admitted(admission: Admission): Ticket {
	if (!admission.ok) throw new Error(`refused at ${admission.scope} (${admission.inFlight}/${admission.limit})`);
	return admission;
}

function fill(target: InFlightGate, count: number, group: string, org?: string): Ticket[] {
	return Array.from({ length: count }, () => admitted(target.tryAcquire(group, org)));
}

describe("in-flight gate: admitting and releasing", () => {
	it("admits up to max_in_flight across all groups, then sheds the next with scope guard", () => {
		const g = gate({ max_in_flight: 3 });
		fill(g, 2, "messages");
		fill(g, 1, "files");
		expect(g.tryAcquire("models")).toEqual({ ok: false, scope: "guard", limit: 3, inFlight: 3 });
		expect(g.snapshot()).toEqual({ in_flight: 3, max_in_flight: 3, groups: { messages: 2, files: 1 }, orgs: {} });
	});

	it("admits again once a slot is released", () => {
		const g = gate({ max_in_flight: 2 });
		const [first] = fill(g, 2, "messages");
		first?.release();
		expect(g.tryAcquire("messages").ok).toBe(true);
	});

	it("releases to zero, leaving no empty entries behind", () => {
		const g = gate({ max_in_flight: 5 });
		const tickets = [...fill(g, 2, "messages", "org_a"), ...fill(g, 1, "files", "org_b")];
		for (const ticket of tickets) ticket.release();
		expect(g.snapshot()).toEqual({ in_flight: 0, max_in_flight: 5, groups: {}, orgs: {} });
	});

	it("bounds a listed group at its cap (scope group) while other groups still get in", () => {
		const g = gate({ max_in_flight: 10, groups: { files: 2 } });
		fill(g, 2, "files");
		expect(g.tryAcquire("files")).toEqual({ ok: false, scope: "group", limit: 2, inFlight: 2 });
		expect(g.tryAcquire("messages").ok).toBe(true);
	});

	it("bounds a group not listed only by max_in_flight", () => {
		const g = gate({ max_in_flight: 4, groups: { files: 1 } });
		fill(g, 4, "messages");
		expect(g.tryAcquire("messages")).toMatchObject({ ok: false, scope: "guard", limit: 4 });
	});

	it("counts an organisation's share per group: max(1, floor(org_share × the group's capacity))", () => {
		const g = gate({ max_in_flight: 10, org_share: 0.5, groups: { files: 4 } });
		expect(g.orgLimitOf("messages")).toBe(5);
		expect(g.orgLimitOf("files")).toBe(2);
		fill(g, 5, "messages", "org_a");
		expect(g.tryAcquire("messages", "org_a")).toEqual({ ok: false, scope: "org", limit: 5, inFlight: 5 });
		expect(g.tryAcquire("messages", "org_b").ok).toBe(true);
		expect(g.tryAcquire("files", "org_a").ok).toBe(true);
	});

	it("leaves nothing held when the organisation's share refuses a one-step acquire", () => {
		const g = gate({ max_in_flight: 4, org_share: 0.25 });
		fill(g, 1, "messages", "org_a");
		const before = g.snapshot();
		expect(g.tryAcquire("messages", "org_a")).toMatchObject({ ok: false, scope: "org", limit: 1 });
		expect(g.snapshot()).toEqual(before);
	});

	it("frees the organisation's share on release", () => {
		const g = gate({ max_in_flight: 4, org_share: 0.25 });
		const [ticket] = fill(g, 1, "messages", "org_a");
		ticket?.release();
		expect(g.tryAcquire("messages", "org_a").ok).toBe(true);
	});
});

describe("in-flight gate: shedding before the organisation is known", () => {
	it("takes the guard slot first and the organisation's share once claimed", () => {
		const g = gate({ max_in_flight: 4, org_share: 0.5 });
		const ticket = admitted(g.tryAcquire("messages"));
		expect(g.snapshot().orgs).toEqual({});
		expect(ticket.claimOrg("org_a")).toEqual({ ok: true });
		expect(g.snapshot()).toMatchObject({ in_flight: 1, orgs: { messages: { org_a: 1 } } });
	});

	it("refuses a claim past the share with scope org, and the ticket stays releasable", () => {
		const g = gate({ max_in_flight: 4, org_share: 0.5 });
		fill(g, 2, "messages", "org_a");
		const ticket = admitted(g.tryAcquire("messages"));
		expect(ticket.claimOrg("org_a")).toEqual({ ok: false, scope: "org", limit: 2, inFlight: 2 });
		expect(g.snapshot().in_flight).toBe(3);
		ticket.release();
		expect(g.snapshot()).toMatchObject({ in_flight: 2, orgs: { messages: { org_a: 2 } } });
	});

	it("answers overload (guard), not the organisation's 429, when the whole guard is full", () => {
		const g = gate({ max_in_flight: 4, org_share: 0.5 });
		fill(g, 2, "messages", "org_a");
		fill(g, 2, "messages", "org_b");
		expect(g.tryAcquire("messages", "org_a")).toMatchObject({ ok: false, scope: "guard" });
	});

	it("leaves the rest of the capacity to other organisations when one bursts", () => {
		const g = gate({ max_in_flight: 10, org_share: 0.5 });
		let shed = 0;
		for (let i = 0; i < 50; i++) if (!g.tryAcquire("messages", "org_burst").ok) shed++;
		expect(shed).toBe(45);
		expect(fill(g, 5, "messages", "org_quiet")).toHaveLength(5);
	});
});

describe("in-flight gate: edge cases", () => {
	it("makes release idempotent: a second release frees nothing more", () => {
		const g = gate({ max_in_flight: 2, org_share: 1 });
		const [ticket] = fill(g, 2, "messages", "org_a");
		ticket?.release();
		ticket?.release();
		expect(g.snapshot()).toMatchObject({ in_flight: 1, groups: { messages: 1 }, orgs: { messages: { org_a: 1 } } });
	});

	it("gives every organisation at least one slot, however small the share", () => {
		const g = gate({ max_in_flight: 4, org_share: 0.1 });
		expect(g.orgLimitOf("messages")).toBe(1);
		expect(g.tryAcquire("messages", "org_a").ok).toBe(true);
	});

	it("floors the share without a floating-point slip (0.29 × 100 is 29)", () => {
		expect(gate({ max_in_flight: 100, org_share: 0.29 }).orgLimitOf("messages")).toBe(29);
		expect(gate({ max_in_flight: 100, org_share: 0.57 }).orgLimitOf("messages")).toBe(57);
	});

	it("caps a group listed above max_in_flight at max_in_flight", () => {
		const g = gate({ max_in_flight: 3, org_share: 1, groups: { files: 50 } });
		expect(g.capacityOf("files")).toBe(3);
		expect(g.orgLimitOf("files")).toBe(3);
	});

	it("reports the guard before the group when both are full", () => {
		const g = gate({ max_in_flight: 2, groups: { files: 2 } });
		fill(g, 2, "files");
		expect(g.tryAcquire("files")).toMatchObject({ scope: "guard" });
	});

	it("throws on a second claim or a claim after release: both are wiring mistakes", () => {
		const g = gate({ max_in_flight: 4 });
		const claimed = admitted(g.tryAcquire("messages", "org_a"));
		expect(() => claimed.claimOrg("org_b")).toThrow(/already holds organisation org_a/);
		const released = admitted(g.tryAcquire("messages"));
		released.release();
		expect(() => released.claimOrg("org_a")).toThrow(/released/);
	});

	it("keeps counts exact under a long random mix of acquires and releases", () => {
		const g = gate({ max_in_flight: 7, org_share: 0.5, groups: { files: 3 } });
		const held: Ticket[] = [];
		let seed = 7;
		const next = () => {
			seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
			return seed / 2_147_483_648;
		};
		for (let i = 0; i < 2000; i++) {
			if (next() < 0.55) {
				const admission = g.tryAcquire(next() < 0.5 ? "files" : "messages", next() < 0.5 ? "org_a" : "org_b");
				if (admission.ok) held.push(admission);
			} else {
				held.splice(Math.floor(next() * held.length), 1)[0]?.release();
			}
			const snap = g.snapshot();
			expect(snap.in_flight).toBe(held.length);
			expect(snap.in_flight).toBeLessThanOrEqual(7);
			expect(snap.groups.files ?? 0).toBeLessThanOrEqual(3);
			for (const counts of Object.values(snap.orgs)) for (const n of Object.values(counts)) expect(n).toBeLessThanOrEqual(3);
		}
		for (const ticket of held) ticket.release();
		expect(g.snapshot()).toEqual({ in_flight: 0, max_in_flight: 7, groups: {}, orgs: {} });
	});
});
