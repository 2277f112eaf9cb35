import type { ResolvedLimits } from "../decisions";

/**
 * One request's claim as the usage object holds it, from admission to settlement: the bucket
 * units it took (by bucket key, so a workspace bucket shared by several pools counts once), the
 * pools it may still land in, and the money it holds against every budget of its scopes.
 */
export interface HeldClaim {
	readonly id: string;
	/** Units taken per bucket key of the pools it is held in (admission and every growth). */
	readonly taken: Record<string, number>;
	/** Units left in pools the request moved out of: they admitted it, so they keep them. */
	readonly kept?: Record<string, number>;
	/** The pools claimed: one, or every pool the request could land in while its model is unknown. */
	readonly pools: readonly ResolvedLimits[];
	readonly nanos: number;
	readonly requests: number;
	readonly inputTokens: number;
	readonly outputTokens: number;
	readonly workspaceId?: string | undefined;
	readonly keyId?: string | undefined;
	/** When an unsettled claim is settled as charged (its isolate is gone), epoch ms. */
	readonly expiresAt: number;
	/** A created Message Batch's claim, held until its results are read (not a request in flight). */
	readonly batch?: boolean;
}

/** What the claims outstanding hold, and what settlements charged since the object's state began. */
export interface ClaimsSummary {
	/** Claims of requests in flight (or lost with their isolate until they expire). */
	readonly outstanding: number;
	readonly held: { readonly requests: number; readonly inputTokens: number; readonly outputTokens: number; readonly nanos: number };
	/** Claims of created Message Batches, held until their results are read, and their money. */
	readonly batches: { readonly held: number; readonly nanos: number };
	readonly settled: number;
	readonly settledNanos: number;
}

/** A claim nobody settles is settled as charged after this long: longer than any request may run. */
export const CLAIM_TTL_MS = 60 * 60_000;

/** A batch's claim waits this long for its results to be read (the API keeps them 29 days), then is charged. */
export const BATCH_HOLD_MS = 30 * 24 * 60 * 60_000;

/**
 * The claims outstanding of one organisation, in its usage object's SQLite (so a restart loses
 * none), with the money each scope holds kept in memory for the budget check.
 */
export class ClaimBook {
	readonly #claims = new Map<string, HeldClaim>();
	readonly #heldByScope = new Map<string, number>();
	#settled = 0;
	#settledNanos = 0;

	constructor(private readonly sql: SqlStorage) {}

	/** Creates the tables if need be and reads every claim. */
	load(): void {
		this.sql.exec("CREATE TABLE IF NOT EXISTS claims (id TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL)");
		this.sql.exec("CREATE TABLE IF NOT EXISTS claim_totals (id INTEGER PRIMARY KEY CHECK (id = 1), settled INTEGER NOT NULL, settled_nanos INTEGER NOT NULL)");
		for (const row of this.sql.exec<{ data: string }>("SELECT data FROM claims")) {
			const claim = JSON.parse(row.data) as HeldClaim;
			this.#claims.set(claim.id, claim);
			this.#hold(claim, 1);
		}
		for (const row of this.sql.exec<{ settled: number; settled_nanos: number }>("SELECT settled, settled_nanos FROM claim_totals")) {
			this.#settled = row.settled;
			this.#settledNanos = row.settled_nanos;
		}
	}

	get size(): number {
		return this.#claims.size;
	}

	get(id: string): HeldClaim | undefined {
		return this.#claims.get(id);
	}

	/** Records a new claim, or replaces one that grew. */
	put(claim: HeldClaim): void {
		const before = this.#claims.get(claim.id);
		if (before !== undefined) this.#hold(before, -1);
		this.#claims.set(claim.id, claim);
		this.#hold(claim, 1);
		this.sql.exec(
			"INSERT INTO claims (id, data, expires_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
			claim.id,
			JSON.stringify(claim),
			claim.expiresAt,
		);
	}

	/** Turns a request's claim into its batch's (`batch:<id>`), held until the batch's results are read. */
	holdForBatch(claim: HeldClaim, batchId: string, now: number): HeldClaim {
		if (this.#claims.delete(claim.id)) this.#hold(claim, -1);
		this.sql.exec("DELETE FROM claims WHERE id = ?", claim.id);
		const held: HeldClaim = { ...claim, id: batchClaimId(batchId), batch: true, expiresAt: now + BATCH_HOLD_MS };
		this.put(held);
		return held;
	}

	/** Removes a settled claim and counts the settlement with the money it charged. */
	settled(claim: HeldClaim, chargedNanos: number): void {
		if (this.#claims.delete(claim.id)) this.#hold(claim, -1);
		this.sql.exec("DELETE FROM claims WHERE id = ?", claim.id);
		this.#settled += 1;
		this.#settledNanos = Math.min(Number.MAX_SAFE_INTEGER, this.#settledNanos + chargedNanos);
		this.sql.exec(
			"INSERT INTO claim_totals (id, settled, settled_nanos) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET settled = excluded.settled, settled_nanos = excluded.settled_nanos",
			this.#settled,
			this.#settledNanos,
		);
	}

	/** Money held by claims outstanding in a scope (`org`, `ws:<id>`, `key:<id>`). */
	heldNanos(scopeKey: string): number {
		return this.#heldByScope.get(scopeKey) ?? 0;
	}

	/** Claims whose time is up. */
	expired(now: number): HeldClaim[] {
		const due: HeldClaim[] = [];
		for (const claim of this.#claims.values()) if (claim.expiresAt <= now) due.push(claim);
		return due;
	}

	/** The soonest expiry, if any claim is outstanding. */
	nextExpiry(): number | undefined {
		let next: number | undefined;
		for (const claim of this.#claims.values()) next = next === undefined ? claim.expiresAt : Math.min(next, claim.expiresAt);
		return next;
	}

	summary(): ClaimsSummary {
		const held = { requests: 0, inputTokens: 0, outputTokens: 0, nanos: 0 };
		const batches = { held: 0, nanos: 0 };
		let outstanding = 0;
		for (const claim of this.#claims.values()) {
			if (claim.batch === true) {
				batches.held += 1;
				batches.nanos += claim.nanos;
				continue;
			}
			outstanding += 1;
			held.requests += claim.requests;
			held.inputTokens += claim.inputTokens;
			held.outputTokens += claim.outputTokens;
			held.nanos += claim.nanos;
		}
		return { outstanding, held, batches, settled: this.#settled, settledNanos: this.#settledNanos };
	}

	/** After the object's storage was deleted (only ever with no claim outstanding). */
	reset(): void {
		this.#claims.clear();
		this.#heldByScope.clear();
		this.#settled = 0;
		this.#settledNanos = 0;
	}

	#hold(claim: HeldClaim, sign: 1 | -1): void {
		for (const scope of claimScopes(claim.workspaceId, claim.keyId)) {
			const next = (this.#heldByScope.get(scope) ?? 0) + sign * claim.nanos;
			if (next <= 0) this.#heldByScope.delete(scope);
			else this.#heldByScope.set(scope, next);
		}
	}
}

/** The spend scopes a claim's money counts in, keyed as the spend ledger keys them. */
export function claimScopes(workspaceId: string | undefined, keyId: string | undefined): string[] {
	const scopes = ["org"];
	if (workspaceId !== undefined) scopes.push(`ws:${workspaceId}`);
	if (keyId !== undefined) scopes.push(`key:${keyId}`);
	return scopes;
}

/** The claim id of a created batch's claim. */
export function batchClaimId(batchId: string): string {
	return `batch:${batchId}`;
}
