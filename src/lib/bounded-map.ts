/** Options of a {@link BoundedMap}. */
export interface BoundedMapOptions<K, V> {
	/**
	 * Hears of each entry dropped for the bound (never of `delete` or `clear`), after it left the
	 * map, so the owner can save what the entry held.
	 */
	readonly onEvict?: (key: K, value: V) => void;
}

/**
 * A `Map` that never holds more than `maxEntries`: setting a key makes it the newest, and past the
 * bound the oldest goes first. The one bound on every per-isolate table keyed by something a
 * client controls (keys, organisations), so no stream of new names can grow an isolate's memory.
 */
export class BoundedMap<K, V> extends Map<K, V> {
	readonly #maxEntries: number;
	readonly #onEvict: ((key: K, value: V) => void) | undefined;

	constructor(maxEntries: number, options: BoundedMapOptions<K, V> = {}) {
		super();
		this.#maxEntries = maxEntries;
		this.#onEvict = options.onEvict;
	}

	override set(key: K, value: V): this {
		super.delete(key);
		super.set(key, value);
		if (this.size > this.#maxEntries) {
			const oldest = this.entries().next();
			if (!oldest.done) {
				const [evicted, held] = oldest.value;
				super.delete(evicted);
				this.#onEvict?.(evicted, held);
			}
		}
		return this;
	}
}
