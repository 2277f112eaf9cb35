/**
 * Conditions a test waits on, checked again whenever what they read changes: a record arriving, a
 * body byte, a stream ending. No polling and no sleeps: a waiter settles on the change that makes
 * its condition true, or fails naming what it waited for once its bound has passed.
 */
export class Watched {
	readonly #watchers = new Set<() => void>();

	/** Something changed: every waiting condition is checked again. */
	changed(): void {
		for (const watcher of [...this.#watchers]) watcher();
	}

	/**
	 * Resolves once `condition` holds (checked now and on every change); rejects with `timeout()`'s
	 * message after `timeoutMs`, or at once with `giveUp()`'s when it says the condition never will.
	 */
	waitFor(condition: () => boolean, timeoutMs: number, timeout: () => string, giveUp: () => string | undefined = () => undefined): Promise<void> {
		return new Promise<void>((resolve, reject) => {
			const cleanup = () => {
				clearTimeout(timer);
				this.#watchers.delete(check);
			};
			const check = () => {
				if (condition()) {
					cleanup();
					resolve();
					return;
				}
				const hopeless = giveUp();
				if (hopeless !== undefined) {
					cleanup();
					reject(new Error(hopeless));
				}
			};
			const timer = setTimeout(() => {
				cleanup();
				reject(new Error(timeout()));
			}, timeoutMs);
			this.#watchers.add(check);
			check();
		});
	}
}
