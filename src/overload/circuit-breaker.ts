import type { BreakerConfig } from "./overload-config";

/** Where the breaker stands: `closed` sends traffic, `open` sends none, `half-open` sends probes. */
export type BreakerState = "closed" | "open" | "half-open";

/**
 * How an admitted request ended, as far as the origin's health goes. `cancelled`: the request never
 * got the origin's verdict for reasons not the origin's (the client went away, the guard refused
 * it after admission); it counts neither way and frees a probe's slot.
 */
export type BreakerOutcome = "success" | "failure" | "cancelled";

/** One state change, reported once, for the log line. */
export interface BreakerTransition {
	readonly from: BreakerState;
	readonly to: BreakerState;
	/** Failures in the window when a closed breaker opens; 0 for changes from other states. */
	readonly failures_in_window: number;
	/** Requests with an outcome in the window when a closed breaker opens; 0 otherwise. */
	readonly requests_in_window: number;
	/** Probes that succeeded (or failed, timeouts included) in the half-open spell being left; else 0. */
	readonly probes_ok: number;
	readonly probes_failed: number;
	/** When the change was made (epoch ms, the breaker's clock). */
	readonly at: number;
}

/** A request the breaker lets through. Report its outcome exactly once (later calls are ignored). */
export interface BreakerPass {
	readonly ok: true;
	/** Whether this request is one of the half-open probes. */
	readonly probe: boolean;
	done(outcome: BreakerOutcome): void;
}

/**
 * A request refused without reaching the origin. `retryAfterMs` is the earliest it could be
 * admitted: the cooldown left when open, 0 when half-open (the probes may settle at any moment);
 * the caller floors the `retry-after` header at its configured value.
 */
export interface BreakerRefusal {
	readonly ok: false;
	readonly state: "open" | "half-open";
	readonly retryAfterMs: number;
}

/** Construction options; everything time-dependent reads `now`. */
export interface BreakerOptions {
	/** The clock, in epoch ms (default `Date.now`). */
	readonly now?: () => number;
	/** Called once per state change, after the change is made. */
	readonly onTransition?: (event: BreakerTransition) => void;
	/**
	 * A probe whose outcome has not arrived this long after admission counts as a timeout, so a
	 * lost `done` cannot hold the breaker half-open for ever. Default: 10 minutes, the longest a
	 * route may wait for the origin's response headers.
	 */
	readonly probeTimeoutMs?: number;
}

/** The default {@link BreakerOptions.probeTimeoutMs}. */
export const DEFAULT_PROBE_TIMEOUT_MS = 600_000;

/**
 * Whether an origin answer counts against its health: any 5xx (the origin's own 503 and 529
 * included), a connection error, or its silence once it had the whole request. 4xx are the
 * caller's problem, not the origin's.
 */
export function isOriginFailure(status: number | "network-error" | "timeout"): boolean {
	if (typeof status !== "number") return true;
	return status >= 500 && status <= 599;
}

/** The window is counted in this many buckets, so its memory is fixed whatever the traffic. */
const BUCKETS = 20;

/**
 * An origin circuit breaker for one isolate. Closed, it admits everything and counts outcomes in a
 * sliding window of `windowMs`; it opens when, within the window, at least `minRequests` requests
 * had an outcome, at least `failureRate` of them failed, and at least `failures` failed. A handful
 * of failures (a few clients' retries) cannot pause every organisation; a failing origin still
 * trips it, and successes do not hide a steady failure rate. Open, it refuses everything until
 * `cooldownMs` has passed, then turns half-open on the next look. Half-open, it admits exactly
 * `probes` requests at a time and refuses the rest: all of them succeeding closes it (with an
 * empty window), any one failing opens it again for a fresh cooldown.
 *
 * Outcomes belong to the state spell in which their request was admitted; one arriving after the
 * state has changed is ignored, so a slow success from before the breaker opened cannot close it,
 * and a late failure from before it closed cannot reopen it. `cancelled` outcomes (the client
 * left, the guard refused the request) count neither way.
 *
 * Report an outcome as soon as the origin's status is known (its response headers), not at the end
 * of a long stream, so probes settle promptly.
 */
export class CircuitBreaker {
	readonly #config: BreakerConfig;
	readonly #now: () => number;
	readonly #onTransition: ((event: BreakerTransition) => void) | undefined;
	readonly #probeTimeoutMs: number;
	#state: BreakerState = "closed";
	// Bumped on every state change; an outcome from an earlier spell is stale.
	#spell = 0;
	#clock = Number.NEGATIVE_INFINITY;
	// Closed: outcomes per bucket of windowMs / BUCKETS, a ring indexed by the bucket's number.
	readonly #bucketMs: number;
	readonly #bucketIds = new Array<number>(BUCKETS).fill(-1);
	readonly #bucketOk = new Array<number>(BUCKETS).fill(0);
	readonly #bucketFailed = new Array<number>(BUCKETS).fill(0);
	// Open: when the cooldown ends.
	#openUntil = 0;
	// Half-open: admission times of probes in flight, and the settled probes' tally.
	readonly #probesInFlight = new Set<{ readonly admittedAt: number }>();
	#probesOk = 0;
	#probesFailed = 0;

	constructor(config: BreakerConfig, options: BreakerOptions = {}) {
		this.#config = config;
		this.#now = options.now ?? Date.now;
		this.#onTransition = options.onTransition;
		this.#probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
		this.#bucketMs = Math.max(1, config.windowMs / BUCKETS);
	}

	/** The state now (a cooldown that has run out shows, and is reported, as half-open). */
	get state(): BreakerState {
		this.#advance(this.#time());
		return this.#state;
	}

	/**
	 * What {@link admit} would answer now, without taking a probe's place: whether a request would
	 * be let through, and if not, how long until it could be (0 when half-open).
	 */
	peek(): { readonly admits: boolean; readonly retryAfterMs: number } {
		const now = this.#time();
		this.#advance(now);
		if (this.#state === "open") return { admits: false, retryAfterMs: this.#openUntil - now };
		if (this.#state === "closed") return { admits: true, retryAfterMs: 0 };
		return { admits: this.#probesInFlight.size + this.#probesOk < this.#config.probes, retryAfterMs: 0 };
	}

	/**
	 * The outcomes counted in the sliding window now, for the health view. Only a closed breaker
	 * counts; an open or half-open one shows the window that opened it until it ages out.
	 */
	recent(): { readonly requests: number; readonly failures: number } {
		const now = this.#time();
		this.#advance(now);
		const { ok, failed } = this.#window(now);
		return { requests: ok + failed, failures: failed };
	}

	/** When an open breaker turns half-open (epoch ms, the breaker's clock); undefined when not open. */
	get halfOpenAt(): number | undefined {
		return this.state === "open" ? this.#openUntil : undefined;
	}

	/** Lets a request through to the origin, or refuses it at once. */
	admit(): BreakerPass | BreakerRefusal {
		const now = this.#time();
		this.#advance(now);
		if (this.#state === "open") return { ok: false, state: "open", retryAfterMs: this.#openUntil - now };
		if (this.#state === "closed") return this.#pass(false, now);
		if (this.#probesInFlight.size + this.#probesOk < this.#config.probes) return this.#pass(true, now);
		return { ok: false, state: "half-open", retryAfterMs: 0 };
	}

	#pass(probe: boolean, now: number): BreakerPass {
		const spell = this.#spell;
		const token = { admittedAt: now };
		if (probe) this.#probesInFlight.add(token);
		let settled = false;
		return {
			ok: true,
			probe,
			done: (outcome) => {
				if (settled) return;
				settled = true;
				const at = this.#time();
				this.#advance(at);
				if (spell !== this.#spell) return;
				if (probe) this.#settleProbe(token, outcome, at);
				else if (outcome !== "cancelled") this.#record(outcome, at);
			},
		};
	}

	#settleProbe(token: { readonly admittedAt: number }, outcome: BreakerOutcome, now: number): void {
		this.#probesInFlight.delete(token);
		if (outcome === "success") {
			this.#probesOk++;
			if (this.#probesOk >= this.#config.probes) this.#moveTo("closed", now);
		} else if (outcome === "failure") {
			this.#probesFailed++;
			this.#moveTo("open", now);
		}
	}

	#record(outcome: "success" | "failure", now: number): void {
		const id = Math.floor(now / this.#bucketMs);
		const slot = id % BUCKETS;
		if (this.#bucketIds[slot] !== id) {
			this.#bucketIds[slot] = id;
			this.#bucketOk[slot] = 0;
			this.#bucketFailed[slot] = 0;
		}
		if (outcome === "success") {
			this.#bucketOk[slot] = (this.#bucketOk[slot] ?? 0) + 1;
			return;
		}
		this.#bucketFailed[slot] = (this.#bucketFailed[slot] ?? 0) + 1;
		const { ok, failed } = this.#window(now);
		const { failures, minRequests, failureRate } = this.#config;
		if (failed >= failures && ok + failed >= minRequests && failed >= failureRate * (ok + failed)) this.#moveTo("open", now);
	}

	/** Outcomes in the buckets that overlap the window ending now. */
	#window(now: number): { ok: number; failed: number } {
		const newest = Math.floor(now / this.#bucketMs);
		let ok = 0;
		let failed = 0;
		for (let slot = 0; slot < BUCKETS; slot++) {
			const id = this.#bucketIds[slot] ?? -1;
			if (id < 0 || newest - id >= BUCKETS) continue;
			ok += this.#bucketOk[slot] ?? 0;
			failed += this.#bucketFailed[slot] ?? 0;
		}
		return { ok, failed };
	}

	/** Applies the changes that time alone makes: cooldown over, probe timed out. */
	#advance(now: number): void {
		if (this.#state === "open" && now >= this.#openUntil) this.#moveTo("half-open", now);
		if (this.#state !== "half-open") return;
		for (const token of this.#probesInFlight) {
			if (now - token.admittedAt >= this.#probeTimeoutMs) {
				this.#probesInFlight.delete(token);
				this.#probesFailed++;
				this.#moveTo("open", now);
				return;
			}
		}
	}

	#moveTo(to: BreakerState, now: number): void {
		const from = this.#state;
		const event: BreakerTransition = {
			from,
			to,
			failures_in_window: from === "closed" ? this.#window(now).failed : 0,
			requests_in_window: from === "closed" ? this.#window(now).ok + this.#window(now).failed : 0,
			probes_ok: from === "half-open" ? this.#probesOk : 0,
			probes_failed: from === "half-open" ? this.#probesFailed : 0,
			at: now,
		};
		this.#state = to;
		this.#spell++;
		this.#probesInFlight.clear();
		this.#probesOk = 0;
		this.#probesFailed = 0;
		if (to === "open") this.#openUntil = now + this.#config.cooldownMs;
		if (to === "closed") this.#bucketIds.fill(-1);
		this.#onTransition?.(event);
	}

	/** The clock, never running backwards: a step back would stretch a cooldown or a window. */
	#time(): number {
		const now = this.#now();
		if (now > this.#clock) this.#clock = now;
		return this.#clock;
	}
}
