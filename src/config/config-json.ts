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
