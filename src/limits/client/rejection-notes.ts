import { BoundedMap } from "../../lib/bounded-map";
import type { Cost, Rejection } from "../decisions";
import type { BudgetHit } from "../spend/money";

interface Note {
	readonly until: number;
	readonly rejection: Rejection;
	readonly cost: Cost;
}

/** Who a request is from and which pool it is charged to: what decides which notes apply to it. */
export interface NoteScope {
	readonly workspaceId?: string | undefined;
	readonly keyId?: string | undefined;
	/** The family whose pool the request is charged to (absent: the organisation's pool). */
	readonly family?: string | undefined;
}

/**
 * The isolate's note of organisations (or workspaces, keys, families' pools) already limited until
 * a known time, so a storm of requests from a limited organisation costs no Durable Object call
 * until its retry time.
 *
 * A note only ever refuses what the object would refuse too, if nothing else changed: it applies
 * to requests of the same scope whose cost in the limit that was hit is at least the noted one
 * (every request costs one request, so a requests or acceleration note applies to all), and it
 * ends exactly at the noted retry time. A rate limit of the organisation is noted per pool (a
 * family's, or the organisation's own), so one family's limit never refuses another's requests; a
 * spent budget is noted for its organisation, workspace or key until its period turns. Past
 * `maxEntries` the oldest note goes first.
 */
export class RejectionNotes {
	readonly #notes: BoundedMap<string, Note>;

	constructor(maxEntries = 10_000) {
		this.#notes = new BoundedMap(maxEntries);
	}

	/** The noted rejection that applies to a request of this cost now, with the wait left. */
	find(orgId: string, who: NoteScope, cost: Cost, now: number): Rejection | undefined {
		return this.#find(candidates(orgId, who, false), cost, now);
	}

	/** The noted spent budget that applies to a request of this workspace and key now, if any. */
	findBudget(orgId: string, who: NoteScope, now: number): Rejection | undefined {
		return this.#find(candidates(orgId, who, true), { requests: 1, inputTokens: 0, outputTokens: 0 }, now);
	}

	#find(keys: readonly string[], cost: Cost, now: number): Rejection | undefined {
		for (const key of keys) {
			const note = this.#notes.get(key);
			if (note === undefined) continue;
			if (note.until <= now) {
				this.#notes.delete(key);
				continue;
			}
			if (applies(note, cost)) return { ...note.rejection, retryAfterMs: note.until - now, source: "note" };
		}
		return undefined;
	}

	/** Notes a rejection the object gave for a request of this cost. */
	remember(orgId: string, who: NoteScope, cost: Cost, rejection: Rejection, now: number): void {
		if (rejection.retryAfterMs === null || rejection.retryAfterMs <= 0) return;
		// A claim that did not fit a budget not yet spent may fit once requests in flight settle.
		if (rejection.budget?.claimNanos !== undefined) return;
		this.#notes.set(keyOf(orgId, who, rejection), { until: now + rejection.retryAfterMs, rejection, cost });
	}

	/** Notes a budget the object says is spent (one a request of this isolate may not have met yet). */
	rememberBudget(orgId: string, budget: BudgetHit, rejection: Omit<Rejection, "limit" | "scope" | "budget" | "retryAfterMs">, now: number): void {
		if (budget.resetAt <= now) return;
		const noted: Rejection = { ...rejection, limit: "spend", scope: budget.scope, budget, retryAfterMs: budget.resetAt - now };
		const who = budget.scope === "workspace" ? { workspaceId: budget.id } : budget.scope === "key" ? { keyId: budget.id } : {};
		this.#notes.set(keyOf(orgId, who, noted), { until: budget.resetAt, rejection: noted, cost: { requests: 1, inputTokens: 0, outputTokens: 0 } });
	}
}

/** The key of a workspace's state in the isolate (organisation ids never contain NUL). */
export function scopeKey(orgId: string, workspaceId: string | undefined): string {
	return workspaceId === undefined ? orgId : `${orgId}\u0000${workspaceId}`;
}

/** The notes that may apply to a request: its spent budgets first, then (unless `budgetsOnly`) its rate limits. */
function candidates(orgId: string, who: NoteScope, budgetsOnly: boolean): string[] {
	const keys = [`${orgId}\u0000s`];
	if (who.workspaceId !== undefined) keys.push(`${orgId}\u0000ws\u0000${who.workspaceId}`);
	if (who.keyId !== undefined) keys.push(`${orgId}\u0000k\u0000${who.keyId}`);
	if (budgetsOnly) return keys;
	keys.push(`${orgId}\u0000o`, `${orgId}\u0000p\u0000${who.family ?? ""}`);
	if (who.workspaceId !== undefined) keys.push(`${orgId}\u0000w\u0000${who.workspaceId}`);
	return keys;
}

function keyOf(orgId: string, who: NoteScope, rejection: Rejection): string {
	if (rejection.limit === "spend") {
		if (rejection.scope === "workspace") return `${orgId}\u0000ws\u0000${rejection.budget?.id ?? who.workspaceId ?? ""}`;
		if (rejection.scope === "key") return `${orgId}\u0000k\u0000${rejection.budget?.id ?? who.keyId ?? ""}`;
		return `${orgId}\u0000s`;
	}
	if (rejection.limit === "acceleration") return `${orgId}\u0000o`;
	if (rejection.scope === "workspace") return `${orgId}\u0000w\u0000${who.workspaceId ?? ""}`;
	return `${orgId}\u0000p\u0000${rejection.family ?? ""}`;
}

function applies(note: Note, cost: Cost): boolean {
	switch (note.rejection.limit) {
		case "requests":
		case "acceleration":
		case "spend":
			return cost.requests >= 1;
		case "input_tokens":
			return cost.inputTokens >= note.cost.inputTokens;
		case "output_tokens":
			return cost.outputTokens >= note.cost.outputTokens;
		default:
			return assertNever(note.rejection.limit);
	}
}

function assertNever(value: never): never {
	throw new Error(`unhandled limit ${String(value)}`);
}
