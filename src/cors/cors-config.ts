import { ConfigError } from "../config/config-error";
import { configValue, describe, fieldsOf } from "../config/config-json";

/** Which browser pages may read the guard's answers (`[vars.CORS]`). */
export interface CorsConfig {
	/**
	 * `"*"`: any page (the API's own behaviour); otherwise the exact origins allowed
	 * (`https://app.example.com`), and an empty set refuses every browser request.
	 */
	readonly allowedOrigins: "*" | ReadonlySet<string>;
	/** How long a browser may cache a preflight answer (`access-control-max-age`), in seconds. */
	readonly maxAgeSeconds: number;
}

/** What an absent `[vars.CORS]` (or a key left out of it) means: any origin, as the API. */
export const CORS_DEFAULTS: CorsConfig = Object.freeze({ allowedOrigins: "*", maxAgeSeconds: 600 });

const FIELDS = ["allowed_origins", "max_age_seconds"] as const;
// Browsers cap the preflight cache themselves (Chromium at 2 hours); a day bounds typos.
const MAX_AGE_SECONDS = 86_400;
const MAX_ORIGINS = 1000;

/**
 * Parses and validates `[vars.CORS]` from `wrangler.toml` (a table, or the same as a JSON string):
 * `allowed_origins` (`["*"]`, or exact origins such as `"https://app.example.com"`; `[]` refuses
 * every browser request) and `max_age_seconds` (0 to 86400). Absent (or an empty string), the
 * defaults of {@link CORS_DEFAULTS}. Throws a {@link ConfigError} naming the bad field, e.g.
 * `CORS.allowed_origins[1]`; unknown keys are rejected.
 */
export function parseCorsConfig(raw: unknown, field = "CORS"): CorsConfig {
	if (raw === undefined || raw === "") return CORS_DEFAULTS;
	const fields = fieldsOf(configValue(raw, field), field, FIELDS);
	return {
		allowedOrigins:
			fields.allowed_origins === undefined ? CORS_DEFAULTS.allowedOrigins : parseOrigins(fields.allowed_origins, `${field}.allowed_origins`),
		maxAgeSeconds: fields.max_age_seconds === undefined ? CORS_DEFAULTS.maxAgeSeconds : parseMaxAge(fields.max_age_seconds, `${field}.max_age_seconds`),
	};
}

function parseOrigins(value: unknown, at: string): "*" | ReadonlySet<string> {
	if (!Array.isArray(value)) {
		throw new ConfigError(at, `must be a list of origins, such as ["*"] or ["https://app.example.com"], got ${describe(value)}`);
	}
	if (value.length > MAX_ORIGINS) throw new ConfigError(at, `must list at most ${MAX_ORIGINS} origins, got ${value.length}`);
	if (value.includes("*")) {
		if (value.length > 1) throw new ConfigError(at, `"*" allows every origin and cannot be combined with others`);
		return "*";
	}
	const origins = new Set<string>();
	value.forEach((entry: unknown, index) => {
		const origin = parseOrigin(entry, `${at}[${index}]`);
		if (origins.has(origin)) throw new ConfigError(`${at}[${index}]`, `${JSON.stringify(origin)} is listed twice`);
		origins.add(origin);
	});
	return origins;
}

/**
 * An origin exactly as a browser serialises it in the `Origin` header: scheme, host and a
 * non-default port, lower case, no path and no trailing slash. Anything else could never match.
 */
function parseOrigin(entry: unknown, at: string): string {
	if (typeof entry !== "string") throw new ConfigError(at, `must be an origin string, got ${describe(entry)}`);
	let url: URL | undefined;
	try {
		url = new URL(entry);
	} catch {
		url = undefined;
	}
	const serialised = url && (url.protocol === "http:" || url.protocol === "https:") ? url.origin : undefined;
	if (serialised !== entry) {
		const hint = serialised === undefined ? "" : `; did you mean ${JSON.stringify(serialised)}?`;
		throw new ConfigError(at, `must be an http(s) origin as browsers send it (scheme://host[:port], lower case, no path), got ${describe(entry)}${hint}`);
	}
	return entry;
}

function parseMaxAge(value: unknown, at: string): number {
	if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_AGE_SECONDS) {
		throw new ConfigError(at, `must be a whole number of seconds from 0 to ${MAX_AGE_SECONDS}, got ${describe(value)}`);
	}
	return value;
}

