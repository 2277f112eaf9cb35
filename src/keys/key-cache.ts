import { BoundedMap } from "../lib/bounded-map";

/**
 * A bounded, time-limited cache of lookups, negative results included, so a hot key costs no KV
 * read per request and a key disabled in KV stops working within `ttlMs`. Past `maxEntries` the
 * oldest entry goes first.
 */
export class TtlCache<V> {
	private readonly entries: BoundedMap<string, { value: V; expires: number }>;

	constructor(
		private readonly ttlMs: number,
		maxEntries = 10_000,
		private readonly now: () => number = Date.now,
	) {
		this.entries = new BoundedMap(maxEntries);
	}

	/** The cached value, or `undefined` if absent or expired (`{ value }` keeps a cached miss apart). */
	get(key: string): { value: V } | undefined {
		const entry = this.entries.get(key);
		if (entry === undefined) return undefined;
		if (entry.expires <= this.now()) {
			this.entries.delete(key);
			return undefined;
		}
		return { value: entry.value };
	}

	set(key: string, value: V): void {
		if (this.ttlMs <= 0) return;
		this.entries.set(key, { value, expires: this.now() + this.ttlMs });
	}
}
