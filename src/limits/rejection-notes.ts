import { BoundedMap } from "../lib/bounded-map";
import type { Cost, Rejection } from "./limiter";

interface Note {
	readonly until: number;
	readonly rejection: Rejection;
	readonly cost: Cost;
}

/**
 * The isolate's note of organisations (or workspaces) already limited until a known time, so a
 * storm of requests from a limited organisation costs no Durable Object call until its retry time.
 *
 * A note only ever refuses what the object would refuse too, if nothing else changed: it applies
 * to requests of the same scope whose cost in the limit that was hit is at least the noted one
 * (every request costs one request, so a requests or acceleration note applies to all), and it
 * ends exactly at the noted retry time. Past `maxEntries` the oldest note goes first.
 */
export class RejectionNotes {
	readonly #notes: BoundedMap<string, Note>;

	constructor(maxEntries = 10_000) {
		this.#notes = new BoundedMap(maxEntries);
	}

	/** The noted rejection that applies to a request of this cost now, with the wait left. */
	find(orgId: string, workspaceId: string | undefined, cost: Cost, now: number): Rejection | undefined {
		const keys = workspaceId === undefined ? [orgId] : [orgId, scopeKey(orgId, workspaceId)];
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
	remember(orgId: string, workspaceId: string | undefined, cost: Cost, rejection: Rejection, now: number): void {
		if (rejection.retryAfterMs === null || rejection.retryAfterMs <= 0) return;
		const key = rejection.scope === "workspace" && workspaceId !== undefined ? scopeKey(orgId, workspaceId) : orgId;
		this.#notes.set(key, { until: now + rejection.retryAfterMs, rejection, cost });
	}
}

/** The key of a workspace's state in the isolate (organisation ids never contain NUL). */
export function scopeKey(orgId: string, workspaceId: string | undefined): string {
	return workspaceId === undefined ? orgId : `${orgId}\u0000${workspaceId}`;
}

function applies(note: Note, cost: Cost): boolean {
	switch (note.rejection.limit) {
		case "requests":
		case "acceleration":
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
