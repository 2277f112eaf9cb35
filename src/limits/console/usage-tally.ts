import { BoundedMap } from "../../lib/bounded-map";
import type { Usage } from "../decisions";
import { type HistoryEntry, minuteOf } from "./usage-history";

/** Usage details the console shows beyond what the limits count. */
export interface UsageDetail {
	readonly cacheReadTokens?: number | undefined;
	readonly cacheWriteTokens?: number | undefined;
}

interface Counts {
	admitted: number;
	refused: Record<string, number>;
	inputTokens: number;
	cacheReadTokens: number;
	cacheWriteTokens: number;
	outputTokens: number;
	spendNanos: number;
	lastRefusal?: { requestId: string; reason: string; at: number };
}

/** Minutes a tally keeps per organisation between calls (older minutes merge into the oldest kept). */
const MAX_TALLY_MINUTES = 60;

/** One isolate's counts, per organisation and minute, until a call to the object takes them. */
export class UsageTally {
	readonly #orgs = new BoundedMap<string, Map<number, Counts>>(10_000);

	admitted(orgId: string, now: number): void {
		this.#counts(orgId, now).admitted++;
	}

	/** A refusal: counted here when the object did not count it, and its request ID kept either way. */
	refused(orgId: string, reason: string, requestId: string | undefined, now: number, counted: boolean): void {
		const counts = this.#counts(orgId, now);
		if (counted) counts.refused[reason] = (counts.refused[reason] ?? 0) + 1;
		if (requestId !== undefined && now >= (counts.lastRefusal?.at ?? 0)) counts.lastRefusal = { requestId, reason, at: now };
	}

	/** Actual usage of a settled request. */
	used(orgId: string, usage: Usage & UsageDetail, now: number): void {
		const counts = this.#counts(orgId, now);
		counts.inputTokens += whole(usage.inputTokens);
		counts.outputTokens += whole(usage.outputTokens);
		counts.cacheReadTokens += whole(usage.cacheReadTokens);
		counts.cacheWriteTokens += whole(usage.cacheWriteTokens);
		counts.spendNanos += whole(usage.costNanos);
	}

	/** Takes everything counted for `orgId` (to send it), or `undefined` when there is nothing. */
	take(orgId: string): HistoryEntry[] | undefined {
		const minutes = this.#orgs.get(orgId);
		if (minutes === undefined) return undefined;
		this.#orgs.delete(orgId);
		return [...minutes].map(([minute, counts]) => ({ minute, ...counts }));
	}

	/** Puts back what a failed call took, so it goes with the next one. */
	restore(orgId: string, entries: readonly HistoryEntry[] | undefined): void {
		for (const entry of entries ?? []) {
			const counts = this.#counts(orgId, entry.minute);
			counts.admitted += entry.admitted ?? 0;
			for (const [reason, n] of Object.entries(entry.refused ?? {})) counts.refused[reason] = (counts.refused[reason] ?? 0) + n;
			counts.inputTokens += entry.inputTokens ?? 0;
			counts.cacheReadTokens += entry.cacheReadTokens ?? 0;
			counts.cacheWriteTokens += entry.cacheWriteTokens ?? 0;
			counts.outputTokens += entry.outputTokens ?? 0;
			counts.spendNanos += entry.spendNanos ?? 0;
			if (entry.lastRefusal !== undefined && entry.lastRefusal.at >= (counts.lastRefusal?.at ?? 0)) counts.lastRefusal = { ...entry.lastRefusal };
		}
	}

	#counts(orgId: string, now: number): Counts {
		let minutes = this.#orgs.get(orgId);
		if (minutes === undefined) {
			minutes = new Map();
			this.#orgs.set(orgId, minutes);
		}
		let minute = minuteOf(now);
		if (!minutes.has(minute) && minutes.size >= MAX_TALLY_MINUTES) minute = Math.min(...minutes.keys());
		let counts = minutes.get(minute);
		if (counts === undefined) {
			counts = { admitted: 0, refused: {}, inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, spendNanos: 0 };
			minutes.set(minute, counts);
		}
		return counts;
	}
}

/** The isolate's tally, shared by its limiter clients and read (and sent) by the admin API. */
export const usageTally = new UsageTally();

function whole(value: number | undefined): number {
	return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.round(value) : 0;
}
