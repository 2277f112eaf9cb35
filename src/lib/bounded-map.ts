/**
 * A `Map` that never holds more than `maxEntries`: setting a key makes it the newest, and past the
 * bound the oldest goes first. The one bound on every per-isolate table keyed by something a
 * client controls (keys, organisations), so no stream of new names can grow an isolate's memory.
 */
export class BoundedMap<K, V> extends Map<K, V> {
	readonly #maxEntries: number;

	constructor(maxEntries: number) {
		super();
		this.#maxEntries = maxEntries;
	}

	override set(key: K, value: V): this {
		super.delete(key);
		super.set(key, value);
		if (this.size > this.#maxEntries) {
			const oldest = this.keys().next();
			if (!oldest.done) super.delete(oldest.value);
		}
		return this;
	}
}
