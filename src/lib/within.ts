/** What {@link within} gives when time ran out first. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/**
 * The one timer race of the guard: `work`'s value, or {@link TIMED_OUT} when `ms` pass first (the
 * work is left running; the caller cancels what it started). The timer is always cleared, so a
 * settled race leaves nothing behind to keep the isolate busy.
 */
export async function within<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
	let timer: ReturnType<typeof setTimeout> | null = null;
	const expired = new Promise<typeof TIMED_OUT>((resolve) => {
		timer = setTimeout(() => resolve(TIMED_OUT), ms);
	});
	try {
		return await Promise.race([work, expired]);
	} finally {
		clearTimeout(timer);
	}
}
