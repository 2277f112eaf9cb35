import { ConfigError } from "./config-error";
import { parseTierConfig, type TierTable } from "../limits/rates/tiers";
import { type OverloadConfig, parseOverloadConfig } from "../overload/overload-config";
import { type CorsConfig, parseCorsConfig } from "../cors/cors-config";
import { describe, parseOriginUrl, parseRouteTable, type Route } from "./route-table";

/** The raw configuration values, as a Worker's `env` or `wrangler.toml` holds them. */
export interface RawGuardConfig {
	ROUTES?: unknown;
	ORIGIN_URL?: unknown;
	KEY_CACHE_TTL_SECONDS?: unknown;
	IDENTITY_HEADERS?: unknown;
	TIERS?: unknown;
	ORG_TIERS?: unknown;
	WORKSPACE_LIMITS?: unknown;
	LIMITER_MODE?: unknown;
	OVERLOAD?: unknown;
	CORS?: unknown;
	REQUIRED_SECRETS?: unknown;
	ORIGIN_TOKEN_HEADER?: unknown;
	PUBLIC_URL?: unknown;
	TRUST_DECLARED_LENGTH?: unknown;
	/** The names, comma-separated, of the secrets REQUIRED_SECRETS lists that are set (never values). */
	presentSecrets?: string;
	/** Whether a service binding named `ORIGIN` is bound. */
	hasOriginBinding: boolean;
	/**
	 * The names, comma-separated, of the service bindings that are bound, which `origins` lists may
	 * name; absent, such names are not checked (a caller that cannot know the bindings).
	 */
	serviceBindings?: string;
	/** Whether a KV namespace named `KEYS` is bound. */
	hasKeysBinding: boolean;
}

/** The request headers that carry the caller's identity to the origin. */
export interface IdentityHeaders {
	readonly org: string;
	readonly key: string;
	readonly workspace: string;
}

/** The validated configuration the pipeline runs on. */
export interface GuardConfig {
	readonly routes: readonly Route[];
	/** The default origin's base URL when no `ORIGIN` service binding is bound. */
	readonly originUrl: string | undefined;
	/** How long a key lookup (found or not) is trusted in the isolate, in ms (0 to 60 s). */
	readonly keyCacheTtlMs: number;
	readonly identityHeaders: IdentityHeaders;
	/** The usage tiers, when `TIERS` is configured (and `USAGE` bound): limits are enforced. */
	readonly tiers: TierTable | undefined;
	/** `exact`: one usage-object call per request; `lease`: isolates spend leased slices locally. */
	readonly limiterMode: "exact" | "lease";
	/** Load shedding, organisations' shares and the origin circuit breaker (`src/overload/`). */
	readonly overload: OverloadConfig;
	/** The header that carries the `ORIGIN_TOKEN` secret to the origin, when it is set. */
	readonly originTokenHeader: string;
	/** Which browser pages may read answers (`[vars.CORS]`). */
	readonly cors: CorsConfig;
	/** The guard's public base URL, that `rewrite_urls` points links at; absent, the request's own. */
	readonly publicUrl: string | undefined;
	/**
	 * Whether a body's valid `Content-Length` is trusted (the runtime frames bodies from the
	 * network by it) so a body needing no look inside reaches the origin untouched; `false` counts
	 * every body, for callers that could lie about a length (other Workers on a service binding).
	 */
	readonly trustDeclaredLength: boolean;
}

/** The secrets the guard knows how to use; REQUIRED_SECRETS may name only these. */
export const KNOWN_SECRETS = ["ORIGIN_TOKEN", "ADMIN_TOKEN"] as const;

/** The path prefix of the operator console and its API (`src/admin/`); no route may take it. */
export const ADMIN_PREFIX = "/_guard";

const DEFAULT_IDENTITY: IdentityHeaders = { org: "x-guard-org-id", key: "x-guard-key-id", workspace: "x-guard-workspace-id" };
const HEADER_NAME = /^[a-z0-9][a-z0-9-]*$/;

/**
 * Validates the whole configuration once. Throws a {@link ConfigError} naming the bad field.
 * Shared by the Worker and by `npm run check-config`, so both say the same thing.
 */
export function parseGuardConfig(raw: RawGuardConfig): GuardConfig {
	checkSecrets(raw.REQUIRED_SECRETS, raw.presentSecrets ?? "");
	const routes = parseRouteTable(raw.ROUTES);
	checkAdminPrefix(routes);
	const originUrl = raw.ORIGIN_URL === undefined || raw.ORIGIN_URL === "" ? undefined : parseOriginUrl(raw.ORIGIN_URL, "ORIGIN_URL");
	if (!raw.hasOriginBinding && originUrl === undefined) {
		const orphan = routes.findIndex((route) => route.origin === undefined && route.origins === undefined);
		if (orphan !== -1) {
			throw new ConfigError(
				"ORIGIN_URL",
				`ROUTES[${orphan}] has no origin of its own, so set ORIGIN_URL or bind a service named ORIGIN`,
			);
		}
	}
	checkOriginBindings(routes, raw.serviceBindings);
	const authRoute = routes.findIndex((route) => route.auth);
	if (authRoute !== -1 && !raw.hasKeysBinding) {
		throw new ConfigError("KEYS", `ROUTES[${authRoute}] needs API keys, so bind a KV namespace named KEYS ([[kv_namespaces]])`);
	}
	return {
		routes,
		originUrl,
		tiers: raw.TIERS === undefined ? undefined : parseTierConfig(raw),
		limiterMode: parseLimiterMode(raw.LIMITER_MODE),
		keyCacheTtlMs: parseTtl(raw.KEY_CACHE_TTL_SECONDS) * 1000,
		identityHeaders: parseIdentityHeaders(raw.IDENTITY_HEADERS),
		overload: parseOverloadGroups(parseOverloadConfig(raw.OVERLOAD), routes),
		originTokenHeader: parseHeaderName(raw.ORIGIN_TOKEN_HEADER, "ORIGIN_TOKEN_HEADER") ?? "x-origin-token",
		cors: parseCorsConfig(raw.CORS),
		publicUrl: raw.PUBLIC_URL === undefined || raw.PUBLIC_URL === "" ? undefined : parseOriginUrl(raw.PUBLIC_URL, "PUBLIC_URL"),
		trustDeclaredLength: parseSwitch(raw.TRUST_DECLARED_LENGTH, "TRUST_DECLARED_LENGTH", true),
	};
}

/**
 * A deployed environment lists the secrets it cannot run without; one missing (never set with
 * `wrangler secret put`) stops the guard (a fixed `500` to clients; the log names it), rather than letting it serve
 * requests the origin would then refuse or, worse, accept without the credential.
 */
function checkSecrets(required: unknown, present: string): void {
	if (required === undefined) return;
	if (!Array.isArray(required) || !required.every((name) => typeof name === "string")) {
		throw new ConfigError("REQUIRED_SECRETS", `must be an array of secret names such as ["ORIGIN_TOKEN"], got ${describe(required)}`);
	}
	const known: readonly string[] = KNOWN_SECRETS;
	const unknown = required.find((name) => !known.includes(name));
	if (unknown !== undefined) throw new ConfigError("REQUIRED_SECRETS", `${JSON.stringify(unknown)} is not a secret the guard uses (${known.join(", ")})`);
	const set = new Set(present.split(","));
	const missing = required.find((name) => !set.has(name));
	if (missing !== undefined) {
		throw new ConfigError(missing, `this environment requires the secret, and it is not set; set it with \`npx wrangler secret put ${missing} --env <environment>\``);
	}
}

/** An origin list naming a service binding that is not bound would fail every request sent there. */
function checkOriginBindings(routes: readonly Route[], bound: string | undefined): void {
	if (bound === undefined) return;
	const names = new Set(bound.split(","));
	routes.forEach((route, index) => {
		route.origins?.forEach((origin, entry) => {
			if (origin.binding !== undefined && !names.has(origin.binding)) {
				throw new ConfigError(`ROUTES[${index}].origins[${entry}].binding`, `no service binding named ${origin.binding} is bound; add it to [[services]]`);
			}
		});
	});
}

/** The console's prefix belongs to the guard: a route there would be shadowed by it, or shadow it. */
function checkAdminPrefix(routes: readonly Route[]): void {
	const taken = routes.findIndex((route) => route.path === ADMIN_PREFIX || route.path.startsWith(`${ADMIN_PREFIX}/`));
	if (taken !== -1) {
		throw new ConfigError(`ROUTES[${taken}].path`, `${ADMIN_PREFIX} and every path under it belong to the guard's operator console; choose another path`);
	}
}

function parseHeaderName(value: unknown, at: string): string | undefined {
	if (value === undefined || value === "") return undefined;
	if (typeof value !== "string" || !HEADER_NAME.test(value)) throw new ConfigError(at, `must be a lower-case header name, got ${describe(value)}`);
	return value;
}

/** A group cap for a group no route has is a typo that would leave the real group unbounded. */
function parseOverloadGroups(overload: OverloadConfig, routes: readonly Route[]): OverloadConfig {
	const known = new Set(routes.map(inFlightGroup));
	for (const group of overload.groups.keys()) {
		if (!known.has(group)) {
			throw new ConfigError(`OVERLOAD.groups.${group}`, `no route has this group; the routes' groups are ${[...known].join(", ")}`);
		}
	}
	return overload;
}

/** The group a route's requests count against in flight: its `group`, else its name. */
export function inFlightGroup(route: Route): string {
	return route.group ?? route.name;
}

function parseSwitch(value: unknown, at: string, fallback: boolean): boolean {
	if (value === undefined || value === "") return fallback;
	if (value === true || value === "true") return true;
	if (value === false || value === "false") return false;
	throw new ConfigError(at, `must be true or false, got ${describe(value)}`);
}

function parseLimiterMode(value: unknown): "exact" | "lease" {
	if (value === undefined || value === "" || value === "exact") return "exact";
	if (value === "lease") return "lease";
	throw new ConfigError("LIMITER_MODE", `must be "exact" or "lease", got ${describe(value)}`);
}

function parseTtl(value: unknown): number {
	if (value === undefined || value === "") return 30;
	const seconds = typeof value === "string" ? Number(value) : value;
	if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0 || seconds > 60) {
		throw new ConfigError("KEY_CACHE_TTL_SECONDS", `must be a number of seconds from 0 to 60, got ${describe(value)}`);
	}
	return seconds;
}

function parseIdentityHeaders(value: unknown): IdentityHeaders {
	if (value === undefined) return DEFAULT_IDENTITY;
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new ConfigError("IDENTITY_HEADERS", `must be a table with org, key and workspace, got ${describe(value)}`);
	}
	const table = value as Record<string, unknown>;
	const names = { ...DEFAULT_IDENTITY };
	for (const [field, name] of Object.entries(table)) {
		if (!(field in DEFAULT_IDENTITY)) {
			throw new ConfigError(`IDENTITY_HEADERS.${field}`, "unknown field; expected org, key or workspace");
		}
		if (typeof name !== "string" || !HEADER_NAME.test(name)) {
			throw new ConfigError(`IDENTITY_HEADERS.${field}`, `must be a lower-case header name, got ${describe(name)}`);
		}
		names[field as keyof IdentityHeaders] = name;
	}
	return names;
}
