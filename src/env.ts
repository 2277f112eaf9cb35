/**
 * The bindings the guard reads. Written by hand rather than by `wrangler types`: that command types
 * each variable as the literal value in the local `wrangler.toml`, while the guard treats every
 * variable as untrusted data that differs per environment and validates it once (`config/`).
 */
export interface Env {
	/** The route table, as TOML data (`[[vars.ROUTES]]`) or a JSON string. */
	ROUTES?: unknown;
	/** Base URL of the origin, used when no `ORIGIN` service binding is bound. */
	ORIGIN_URL?: unknown;
	/** The origin as a service binding; wins over `ORIGIN_URL`. */
	ORIGIN?: Fetcher;
}
