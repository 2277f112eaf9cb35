import { ConfigError } from "./config-error";

/**
 * A configuration value as `wrangler.toml` gives it (a table or an array), or the same as a JSON
 * string (`wrangler deploy --var`, `npm start -- --var`). The one place such a string is parsed.
 */
export function configValue(raw: unknown, at: string): unknown {
	if (typeof raw !== "string") return raw;
	try {
		return JSON.parse(raw);
	} catch (error) {
		throw new ConfigError(at, `is a string but not valid JSON (${(error as Error).message})`);
	}
}

/** A nested table whose every key is one of `allowed`: a misspelt field is an error, never ignored. */
export function fieldsOf(value: unknown, at: string, allowed: readonly string[]): Record<string, unknown> {
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new ConfigError(at, `must be a table with ${allowed.join(", ")}, got ${describe(value)}`);
	}
	const fields = value as Record<string, unknown>;
	for (const key of Object.keys(fields)) {
		if (!allowed.includes(key)) throw new ConfigError(`${at}.${key}`, `unknown field; expected one of ${allowed.join(", ")}`);
	}
	return fields;
}

/** A short, safe description of a bad value for an error message. */
export function describe(value: unknown): string {
	if (value === undefined) return "nothing";
	if (Array.isArray(value)) return "an array";
	if (value === null) return "null";
	if (typeof value === "object") return "a table";
	const text = JSON.stringify(value);
	return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
