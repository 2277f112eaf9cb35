import type { AccelerationConfig } from "../decisions";
import { MINUTE_MS } from "./token-bucket";

/**
 * Acceleration limits, as pure arithmetic with the time passed in.
 *
 * Two exponentially weighted rates of admitted requests, in requests per minute: a short one with
 * the window as time constant, and a trailing baseline with a much longer one. A request is
 * admitted while the short rate, before it, is at most `max(floor, multiple × baseline)`. Rejected
 * requests count for neither rate, so once limited an organisation is held near `multiple ×`
 * its baseline, the baseline rises with what is admitted, and the limit lifts on its own: traffic
 * can grow by about `multiple - 1` baselines per baseline time constant, never jump.
 *
 * The check is made before the request is counted (so the rate may pass the allowance by one
 * request's weight, `60_000 / windowMs` per minute) because that form is monotone in time: once
 * a wait has passed, the check keeps passing while nothing else happens, which is what makes the
 * retry-after exact. It is evaluated in log space from the stored state, so the same comparison
 * is made whenever it is asked.
 */

/** The two rates (requests per minute) as of `at` (epoch ms). */
export interface MeterState {
	readonly shortRate: number;
	readonly baselineRate: number;
	readonly at: number;
}

/** Whether a request is admissible at `now`. */
export function admissible(state: MeterState | undefined, config: AccelerationConfig, now: number): boolean {
	if (state === undefined || state.shortRate <= 0) return true;
	const elapsed = Math.max(0, now - state.at);
	const logShort = Math.log(state.shortRate);
	if (logShort - Math.log(config.floorPerMinute) <= elapsed / config.windowMs) return true;
	if (state.baselineRate <= 0) return false;
	// short(t) <= multiple × baseline(t), with both decaying from `at`, in log space.
	const convergence = 1 / config.windowMs - 1 / config.baselineMs;
	return logShort - Math.log(config.multiple * state.baselineRate) <= elapsed * convergence;
}

/** Ms until a request is admissible (0 if it is now): the least whole number that passes. */
export function waitFor(state: MeterState | undefined, config: AccelerationConfig, now: number): number {
	if (admissible(state, config, now) || state === undefined) return 0;
	// The floor alone is reached by this time; the baseline may allow it sooner.
	const byFloor = Math.ceil(config.windowMs * (Math.log(state.shortRate) - Math.log(config.floorPerMinute)));
	let high = Math.max(now + 1, state.at + byFloor);
	for (let step = 1; !admissible(state, config, high); step *= 2) high += step;
	let low = now;
	while (high - low > 1) {
		const middle = low + Math.floor((high - low) / 2);
		if (admissible(state, config, middle)) high = middle;
		else low = middle;
	}
	return high - now;
}

/** The short-window rate allowed at `now`, requests per minute. */
export function allowedRate(state: MeterState | undefined, config: AccelerationConfig, now: number): number {
	return Math.max(config.floorPerMinute, config.multiple * decayed(state, config, now).baselineRate);
}

/** How many requests could be admitted one after another at `now` (at least 1 if admissible now). */
export function headroom(state: MeterState | undefined, config: AccelerationConfig, now: number): number {
	if (!admissible(state, config, now)) return 0;
	const room = allowedRate(state, config, now) - decayed(state, config, now).shortRate;
	return 1 + Math.max(0, Math.floor(room / (MINUTE_MS / config.windowMs)));
}

/** The meter after admitting `count` requests at `now`. */
export function record(state: MeterState | undefined, config: AccelerationConfig, now: number, count: number): MeterState {
	const current = decayed(state, config, now);
	return {
		shortRate: current.shortRate + (count * MINUTE_MS) / config.windowMs,
		baselineRate: current.baselineRate + (count * MINUTE_MS) / config.baselineMs,
		at: current.at,
	};
}

/** The rates decayed to `now` (never backwards in time). */
export function decayed(state: MeterState | undefined, config: AccelerationConfig, now: number): MeterState {
	if (state === undefined) return { shortRate: 0, baselineRate: 0, at: now };
	const elapsed = Math.max(0, now - state.at);
	return {
		shortRate: state.shortRate * Math.exp(-elapsed / config.windowMs),
		baselineRate: state.baselineRate * Math.exp(-elapsed / config.baselineMs),
		at: Math.max(state.at, now),
	};
}
