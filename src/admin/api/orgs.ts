import { KeyStore } from "../../keys/key-store";
import { type AdminContext, keysOf } from "../admin-context";
import { wholeParam } from "../http/json";
import { type OrgView, orgView } from "../usage/org-view";
import { readOrgReport } from "../usage/usage-calls";
import { DAYS_KEPT, MINUTES_KEPT } from "../../limits/console/usage-history";
import type { KeyRecord } from "../../keys/key-record";

/** At most this many organisations are listed (then `truncated` is true). */
const MAX_ORGS = 200;
/** Usage objects asked at once while listing. */
const CONCURRENCY = 8;
const LIST_MINUTES = 60;

/**
 * `GET /_guard/api/orgs`: every organisation with a key or a tier of its own, with its limits,
 * what is left of them, its spend, and its last hour's totals.
 */
export async function listOrgs(context: AdminContext): Promise<{ orgs: OrgView[]; truncated: boolean }> {
	const keys = await new KeyStore(keysOf(context.env)).all();
	const ids = new Set(keys.map((key) => key.org_id));
	for (const id of context.config.tiers?.orgTiers.keys() ?? []) ids.add(id);
	const sorted = [...ids].sort();
	const chosen = sorted.slice(0, MAX_ORGS);
	const orgs = await mapLimited(chosen, CONCURRENCY, (id) => viewOf(context, id, keys, LIST_MINUTES, 1, false));
	return { orgs, truncated: sorted.length > chosen.length };
}

/** `GET /_guard/api/orgs/:id?minutes=N&days=N`: one organisation with its history (60 minutes and 30 days by default). */
export async function getOrg(context: AdminContext, orgId: string): Promise<{ org: OrgView }> {
	const minutes = wholeParam(context.url, "minutes", 1, MINUTES_KEPT, 60);
	const days = wholeParam(context.url, "days", 1, DAYS_KEPT, 30);
	const keys = await new KeyStore(keysOf(context.env)).all();
	return { org: await viewOf(context, orgId, keys, minutes, days, true) };
}

async function viewOf(context: AdminContext, orgId: string, keys: readonly KeyRecord[], minutes: number, days: number, withHistory: boolean): Promise<OrgView> {
	const { env, config } = context;
	const report = env.USAGE === undefined || config.tiers === undefined ? undefined : await readOrgReport(env.USAGE, config, orgId, minutes, days);
	return orgView(config, orgId, keys, report, withHistory);
}

async function mapLimited<T, U>(items: readonly T[], limit: number, map: (item: T) => Promise<U>): Promise<U[]> {
	const results = new Array<U>(items.length);
	let next = 0;
	const worker = async () => {
		while (next < items.length) {
			const i = next++;
			results[i] = await map(items[i] as T);
		}
	};
	await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
	return results;
}
