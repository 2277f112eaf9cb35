import type { OverloadConfig } from "./overload-config";

/**
 * A request not admitted. `guard` and `group` mean the isolate (or the route group) is full: the
 * caller answers `529 overloaded_error`. `org` means the organisation holds its whole share of the
 * group: the caller answers `429 rate_limit_error`. `limit` is the bound that was hit and
 * `inFlight` what that scope held at the time.
 */
export interface GateRefusal {
	readonly ok: false;
	readonly scope: "guard" | "group" | "org";
	readonly limit: number;
	readonly inFlight: number;
}

/** A refusal because the organisation already holds its share of the group. */
export interface OrgRefusal extends GateRefusal {
	readonly scope: "org";
}

/** An admitted request's slot. Release it when the origin exchange is over, on every path. */
export interface Ticket {
	readonly ok: true;
	/**
	 * Counts the slot against `org`'s share of the group, once the organisation is known (after
	 * authentication). On refusal the ticket is unchanged and still needs {@link release}. Claiming
	 * twice, or after release, is a programming error and throws.
	 */
	claimOrg(org: string): { readonly ok: true } | OrgRefusal;
	/** Frees the slot (and the organisation's share, if claimed). Idempotent. */
	release(): void;
}

/** What {@link InFlightGate.tryAcquire} answers. */
export type Admission = Ticket | GateRefusal;

/** Counts for a log line or a test; `orgs` holds only (group, organisation) pairs in flight. */
export interface GateSnapshot {
	readonly in_flight: number;
	readonly max_in_flight: number;
	readonly groups: Record<string, number>;
	readonly orgs: Record<string, Record<string, number>>;
}

/**
 * Bounds requests in flight to the origin in one isolate: all groups together (`max_in_flight`),
 * each route group (`groups`), and each organisation within a group (`org_share` of the group's
 * capacity, at least 1). Nothing here ever cuts off a request already admitted.
 *
 * Order of checks: the whole guard, then the group (either refusal is overload, 529), then the
 * organisation (429). The first two need no identity, so a caller can shed with
 * `tryAcquire(group)` before authenticating and {@link Ticket.claimOrg} after; a request refused
 * at both levels is reported as overload, since the guard could not have served it anyway.
 *
 * One instance per isolate and configuration; the counts are plain numbers because an isolate runs
 * one JavaScript thread.
 */
export class InFlightGate {
	readonly #maxInFlight: number;
	readonly #orgShare: number;
	readonly #caps: ReadonlyMap<string, number>;
	#total = 0;
	readonly #groups = new Map<string, number>();
	readonly #orgs = new Map<string, Map<string, number>>();

	constructor(config: Pick<OverloadConfig, "maxInFlight" | "orgShare" | "groups">) {
		this.#maxInFlight = config.maxInFlight;
		this.#orgShare = config.orgShare;
		this.#caps = config.groups;
	}

	/** The group's effective capacity: its own cap, never above `max_in_flight`. */
	capacityOf(group: string): number {
		return Math.min(this.#caps.get(group) ?? this.#maxInFlight, this.#maxInFlight);
	}

	/** How many of the group's slots one organisation may hold: `max(1, floor(org_share × capacity))`. */
	orgLimitOf(group: string): number {
		// The epsilon keeps 0.29 × 100 (28.999…96 in floating point) from flooring to 28.
		return Math.max(1, Math.floor(this.#orgShare * this.capacityOf(group) + 1e-9));
	}

	/**
	 * Takes a slot in the guard and `group`, and in `org`'s share when given; or says which bound
	 * refused it. A refused request holds nothing.
	 */
	tryAcquire(group: string, org?: string): Admission {
		if (this.#total >= this.#maxInFlight) {
			return { ok: false, scope: "guard", limit: this.#maxInFlight, inFlight: this.#total };
		}
		const capacity = this.capacityOf(group);
		const inGroup = this.#groups.get(group) ?? 0;
		if (inGroup >= capacity) return { ok: false, scope: "group", limit: capacity, inFlight: inGroup };
		this.#total++;
		this.#groups.set(group, inGroup + 1);
		const ticket = this.#ticket(group);
		if (org === undefined) return ticket;
		const claim = ticket.claimOrg(org);
		if (claim.ok) return ticket;
		ticket.release();
		return claim;
	}

	/** The counts now. */
	snapshot(): GateSnapshot {
		const orgs: Record<string, Record<string, number>> = {};
		for (const [group, counts] of this.#orgs) orgs[group] = Object.fromEntries(counts);
		return { in_flight: this.#total, max_in_flight: this.#maxInFlight, groups: Object.fromEntries(this.#groups), orgs };
	}

	#ticket(group: string): Ticket {
		let released = false;
		let claimed: string | undefined;
		return {
			ok: true,
			claimOrg: (org) => {
				if (released) throw new Error("claimOrg on a released in-flight ticket");
				if (claimed !== undefined) throw new Error(`this in-flight ticket already holds organisation ${claimed}`);
				const limit = this.orgLimitOf(group);
				const held = this.#orgs.get(group)?.get(org) ?? 0;
				if (held >= limit) return { ok: false, scope: "org", limit, inFlight: held };
				claimed = org;
				this.#addOrg(group, org, 1);
				return { ok: true };
			},
			release: () => {
				if (released) return;
				released = true;
				this.#total--;
				decrement(this.#groups, group);
				if (claimed !== undefined) this.#addOrg(group, claimed, -1);
			},
		};
	}

	#addOrg(group: string, org: string, delta: 1 | -1): void {
		let counts = this.#orgs.get(group);
		if (counts === undefined) {
			counts = new Map();
			this.#orgs.set(group, counts);
		}
		if (delta === 1) counts.set(org, (counts.get(org) ?? 0) + 1);
		else decrement(counts, org);
		// Organisations come and go; dropping empty entries keeps memory bounded by what is in flight.
		if (counts.size === 0) this.#orgs.delete(group);
	}
}

function decrement(counts: Map<string, number>, key: string): void {
	const next = (counts.get(key) ?? 0) - 1;
	if (next > 0) counts.set(key, next);
	else counts.delete(key);
}
