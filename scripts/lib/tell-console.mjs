// After `npm run keys` disabled, enabled or deleted a key in KV, asks the running guard to list
// (or unlist) it with its organisation's usage object through the admin API, so every isolate
// refuses it within seconds instead of after its key cache and KV's propagation (README,
// "Console"). The KV change stands whether or not the guard could be told.
import { DEMO_ADMIN_TOKEN } from "./demo-admin.mjs";

const TIMEOUT_MS = 3000;

/**
 * Local (default): the guard at EDGE_GUARD_URL (default http://127.0.0.1:8787, as `npm start`
 * serves it) with EDGE_GUARD_ADMIN_TOKEN (default the local demo token). `--remote`: both must be
 * set (the deployed guard's URL and its ADMIN_TOKEN secret). Answers a line to print; never the token.
 * @param {{ remote: boolean, orgId: string, keyId: string, revoked: boolean }} change
 * @returns {Promise<string>}
 */
export async function tellConsole({ remote, orgId, keyId, revoked }) {
	const fallback = "Isolates that cached it notice within KEY_CACHE_TTL_SECONDS (plus KV's propagation, deployed).";
	const base = process.env.EDGE_GUARD_URL ?? (remote ? undefined : "http://127.0.0.1:8787");
	const token = process.env.EDGE_GUARD_ADMIN_TOKEN ?? (remote ? undefined : DEMO_ADMIN_TOKEN);
	if (base === undefined || token === undefined) return `${fallback} Set EDGE_GUARD_URL and EDGE_GUARD_ADMIN_TOKEN to have the guard refuse it within seconds.`;
	let response;
	try {
		response = await fetch(new URL("/_guard/api/revocations", base), {
			method: "POST",
			headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
			body: JSON.stringify({ org_id: orgId, key_id: keyId, revoked }),
			signal: AbortSignal.timeout(TIMEOUT_MS),
		});
	} catch {
		return `The guard at ${base} was not reached. ${fallback}`;
	}
	await response.body?.cancel();
	if (!response.ok) return `The guard at ${base} answered ${response.status} to the revocation. ${fallback}`;
	return revoked
		? `The guard at ${base} was told: every isolate refuses it at its next call to ${orgId}'s usage object (within seconds).`
		: `The guard at ${base} was told: it is off ${orgId}'s revocation list.`;
}
