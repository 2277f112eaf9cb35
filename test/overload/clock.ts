/** The time every overload test starts at (epoch ms). */
export const T0 = 1_800_000_000_000;

/** A clock the test moves by hand, so nothing sleeps. */
export interface ManualClock {
	readonly now: () => number;
	/** Moves the clock by `ms` (negative runs it backwards). */
	advance(ms: number): void;
	/** Sets the clock to `ms` after {@link T0}. */
	at(ms: number): void;
}

/** A {@link ManualClock} starting at {@link T0}. */
export function manualClock(): ManualClock {
	let time = T0;
	return {
		now: () => time,
		advance: (ms) => {
			time += ms;
		},
		at: (ms) => {
			time = T0 + ms;
		},
	};
}
