import { BoundedMap } from "../../lib/bounded-map";
import { type BucketState, available, take, waitFor } from "../rates/token-bucket";

/** The share of an organisation's request limit one isolate admits while the usage object is down. */
export const FALLBACK_SHARE = 0.1;

/**
 * A conservative in-isolate request limit for when the usage object cannot answer: each isolate
 * admits an organisation at most {@link FALLBACK_SHARE} of its tier's requests per minute on its
 * own count. Isolates do not share it, so across N isolates an organisation gets at most N × 10%
 * of its limit while the object is down.
 */
export class FallbackLimit {
	// Organisations come and go while the object is down; the oldest are forgotten first.
	readonly #buckets = new BoundedMap<string, BucketState>(10_000);

	constructor(private readonly now: () => number = Date.now) {}

	/** Admits one request (`{ admitted: true }`) or says how long to wait, in ms. */
	admit(orgId: string, requestsPerMinute: number): { admitted: true } | { admitted: false; retryAfterMs: number } {
		const perMinute = Math.max(1, Math.floor(requestsPerMinute * FALLBACK_SHARE));
		const now = this.now();
		const state = this.#buckets.get(orgId);
		if (available(state, perMinute, now) >= 1) {
			this.#buckets.set(orgId, take(state, perMinute, 1, now));
			return { admitted: true };
		}
		return { admitted: false, retryAfterMs: waitFor(state, perMinute, 1, now) ?? 60_000 };
	}
}
