import { GuardError } from "../../errors/guard-error";
import type { AdminContext } from "../admin-context";
import { health } from "../health/health";
import { jsonAnswer } from "../http/json";
import { keyIdFrom, orgIdFrom } from "../keys/key-admin";
import { deleteKey, listKeys, patchKey, postKey, postRevocation } from "./keys";
import { getOrg, listOrgs } from "./orgs";

type Handler = (context: AdminContext, id: string) => Promise<unknown> | unknown;

interface Endpoint {
	readonly name: string;
	readonly methods: Record<string, Handler>;
	readonly status?: Record<string, number>;
}

/** The admin API, by path under `/_guard/api/`: `:id` stands for one segment. */
const ENDPOINTS: Record<string, Endpoint> = {
	orgs: { name: "orgs", methods: { GET: listOrgs } },
	"orgs/:id": { name: "org", methods: { GET: (context, id) => getOrg(context, orgIdFrom(id)) } },
	keys: { name: "keys", methods: { GET: listKeys, POST: postKey }, status: { POST: 201 } },
	"keys/:id": { name: "key", methods: { PATCH: (context, id) => patchKey(context, keyIdFrom(id)), DELETE: (context, id) => deleteKey(context, keyIdFrom(id)) } },
	revocations: { name: "revocations", methods: { POST: postRevocation } },
	health: { name: "health", methods: { GET: (context) => health(context.config, context.overload, context.env) } },
};

/**
 * Answers one admin API request (already authenticated): JSON in and out, `404` for a path the
 * API does not have, `405` with `allow` for a method it does not take there.
 */
export async function answerApi(context: AdminContext, rest: string): Promise<Response> {
	const segments = rest.split("/").filter((segment) => segment !== "");
	const [first, id, ...extra] = segments;
	const pattern = extra.length > 0 || first === undefined ? undefined : id === undefined ? first : `${first}/:id`;
	const endpoint = pattern === undefined ? undefined : ENDPOINTS[pattern];
	if (endpoint === undefined) throw new GuardError(404, "The admin API has no such endpoint.");
	const method = context.request.method === "HEAD" ? "GET" : context.request.method;
	const handler = endpoint.methods[method];
	const allow = Object.keys(endpoint.methods).join(", ");
	context.state.route = `admin.${endpoint.name}`;
	if (handler === undefined) throw new GuardError(405, `${context.request.method} is not allowed on this admin endpoint; allowed: ${allow}.`, { headers: { allow } });
	const body = await handler(context, decodeSegment(id));
	return jsonAnswer(endpoint.status?.[method] ?? 200, body);
}

function decodeSegment(segment: string | undefined): string {
	if (segment === undefined) return "";
	try {
		return decodeURIComponent(segment);
	} catch {
		throw new GuardError(404, "The admin API has no such endpoint.");
	}
}
