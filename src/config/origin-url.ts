import { ConfigError } from "./config-error";
import { describe } from "./config-json";

/**
 * Validates a base URL (an origin, `ORIGIN_URL`, `PUBLIC_URL`): absolute http(s), no credentials,
 * query or fragment. Credentials in a URL are secrets that would reach every log line; the origin
 * is vouched for with `ORIGIN_TOKEN` instead. The message never repeats a value holding them.
 */
export function parseOriginUrl(value: unknown, at: string): string {
	let url: URL | undefined;
	if (typeof value === "string") {
		try {
			url = new URL(value);
		} catch {
			url = undefined;
		}
	}
	const shown = typeof value === "string" && /\/\/[^/]*@/.test(value) ? "a URL with credentials (user:password@), not shown" : describe(value);
	if (url && (url.username !== "" || url.password !== "")) {
		throw new ConfigError(at, "must not carry credentials (user:password@); set the ORIGIN_TOKEN secret for the origin to check instead");
	}
	if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || url.search || url.hash || shown !== describe(value)) {
		throw new ConfigError(at, `must be an absolute http(s) URL without credentials, query or fragment, got ${shown}`);
	}
	return url.href.replace(/\/$/, "");
}
