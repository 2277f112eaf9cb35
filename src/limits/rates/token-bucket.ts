import type { LimitStatus } from "../decisions";

/**
 * Continuously refilled token buckets, as pure integer arithmetic with the time passed in.
 *
 * A bucket of `perMinute` units holds at most `perMinute` units and refills `perMinute` units per
 * minute. Levels are kept in sixty-thousandths of a unit, so a bucket refills exactly `perMinute`
 * of them per ms: every level, cost and wait is a whole number, and a retry computed here is never
 * early by a rounding error. That needs `perMinute * 60_000` below 2^53; tiers are capped at
 * {@link MAX_PER_MINUTE}.
 */

/** The window every limit is stated over, in ms; also the scale of a level (parts per unit). */
export const MINUTE_MS = 60_000;

/** The largest limit per minute whose arithmetic stays exact. */
export const MAX_PER_MINUTE = 10_000_000_000;

/**
 * How far below empty a bucket may go, in minutes of refill. Actual usage is debited after the
 * fact and can overdraw a bucket; the floor keeps one runaway response from locking an
 * organisation out for longer than this.
 */
export const MAX_DEBT_MINUTES = 10;

/** A bucket's level (in sixty-thousandths of a unit, negative when in debt) at time `at` (epoch ms). */
export interface BucketState {
	readonly level: number;
	readonly at: number;
}

/** The level at `now`; a bucket never seen is full. */
export function levelAt(state: BucketState | undefined, perMinute: number, now: number): number {
	const capacity = perMinute * MINUTE_MS;
	if (state === undefined || state.level >= capacity) return capacity;
	const elapsed = Math.max(0, now - state.at);
	const refill = elapsed * perMinute;
	return refill >= capacity - state.level ? capacity : state.level + refill;
}

/**
 * Ms until `units` are available (0 if they are now), or `null` if they never will be because they
 * exceed the bucket's capacity.
 */
export function waitFor(state: BucketState | undefined, perMinute: number, units: number, now: number): number | null {
	if (units > perMinute) return null;
	const missing = units * MINUTE_MS - levelAt(state, perMinute, now);
	return missing <= 0 ? 0 : ceilDiv(missing, perMinute);
}

/**
 * The bucket after taking `units` at `now` (a negative number credits them back). Never above
 * capacity, never below {@link MAX_DEBT_MINUTES} of debt; time never runs backwards.
 */
export function take(state: BucketState | undefined, perMinute: number, units: number, now: number): BucketState {
	const capacity = perMinute * MINUTE_MS;
	const level = levelAt(state, perMinute, now) - units * MINUTE_MS;
	return {
		level: Math.min(capacity, Math.max(-MAX_DEBT_MINUTES * capacity, level)),
		at: Math.max(state?.at ?? now, now),
	};
}

/** Whole units available at `now` (0 when empty or in debt). */
export function available(state: BucketState | undefined, perMinute: number, now: number): number {
	return Math.max(0, Math.floor(levelAt(state, perMinute, now) / MINUTE_MS));
}

/** What the rate-limit headers say about the bucket at `now`. */
export function status(state: BucketState | undefined, perMinute: number, now: number): LimitStatus {
	const level = levelAt(state, perMinute, now);
	return {
		limit: perMinute,
		remaining: Math.max(0, Math.floor(level / MINUTE_MS)),
		resetAt: now + ceilDiv(perMinute * MINUTE_MS - level, perMinute),
	};
}

/** `ceil(a / b)` for whole `a >= 0` and `b > 0`, exact where floating-point division may not be. */
function ceilDiv(a: number, b: number): number {
	let q = Math.ceil(a / b);
	while (q * b < a) q++;
	while (q > 0 && (q - 1) * b >= a) q--;
	return q;
}
