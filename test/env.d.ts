// The bindings `env` from `cloudflare:workers` has in tests: the guard's own (src/env.ts), plus the
// test-only sink origin.
declare namespace Cloudflare {
	interface Env {
		ROUTES?: unknown;
		ORIGIN_URL?: unknown;
		ORIGIN?: Fetcher;
		KEYS?: KVNamespace;
		/** The test-only sink origin (test/fixtures/sink-origin.ts). */
		SINK: Fetcher;
	}
}
