import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { Env } from "../../src/env";
import { callGuard, callGuardToSink } from "../helpers";

/** The admin token these tests configure (the Worker's own wrangler.toml sets none). */
export const ADMIN_TOKEN = "test-admin-token-Zq81vTn3";

/** The environment with the console on. */
export const ADMIN_ENV: Partial<Env> = { ADMIN_TOKEN };

/**
 * Calls the admin API (or the console's page) with the admin token, unless `token` says otherwise
 * (`null`: no authorization header). No API key goes with it.
 */
export function admin(
	path: string,
	init: RequestInit & { token?: string | null; json?: unknown } = {},
	overrides: Partial<Env> = {},
): Promise<Response> {
	const { token = ADMIN_TOKEN, json, ...rest } = init;
	const headers = new Headers(rest.headers);
	headers.set("x-api-key", "");
	headers.set("anthropic-version", "");
	if (token !== null) headers.set("authorization", `Bearer ${token}`);
	if (json !== undefined) headers.set("content-type", "application/json");
	return callGuard(path, { ...rest, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) }, { ...ADMIN_ENV, ...overrides });
}

/** An admin call that must answer `status`; its JSON body. */
export async function adminJson<T = Record<string, unknown>>(path: string, status: number, init: Parameters<typeof admin>[1] = {}, overrides: Partial<Env> = {}): Promise<T> {
	const response = await admin(path, init, overrides);
	const text = await response.text();
	expect(response.status, text).toBe(status);
	expect(response.headers.get("content-type")).toBe("application/json");
	return JSON.parse(text) as T;
}

/** A request of an API client with `key`, through the guard to the sink origin. */
export function apiCall(key: string, path = "/v1/models", overrides: Partial<Env> = {}): Promise<Response> {
	return callGuardToSink(path, { headers: { "x-api-key": key } }, { ...ADMIN_ENV, ...overrides });
}

/** A tier table where `orgId` is on a tier of `perMinute` requests a minute, and the console is on. */
export function tightTier(orgId: string, perMinute: number, mode: "exact" | "lease" = "exact"): Partial<Env> {
	const tiers = env.TIERS as Record<string, unknown> | undefined;
	return {
		...ADMIN_ENV,
		TIERS: { ...(tiers ?? {}), admin_test: { requests_per_minute: perMinute, input_tokens_per_minute: 1_000_000, output_tokens_per_minute: 1_000_000 } },
		ORG_TIERS: { ...((env.ORG_TIERS as Record<string, string> | undefined) ?? {}), [orgId]: "admin_test" },
		LIMITER_MODE: mode,
	};
}
