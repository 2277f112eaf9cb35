import type { GuardConfig } from "../../config/guard-config";
import { GuardError } from "../../errors/guard-error";
import { TIMED_OUT, within } from "../../lib/within";
import { usageTally } from "../../limits/console/usage-tally";
import type { ResolvedLimits } from "../../limits/decisions";
import { revocationBook } from "../../keys/revocations";
import { resolveLimits, tierOf } from "../../limits/rates/tiers";
import type { UsageObject } from "../../limits/usage-object/usage-object";

/** The longest an admin call waits for a usage object, ms. */
const OBJECT_TIMEOUT_MS = 2000;

type UsageNamespace = DurableObjectNamespace<UsageObject>;

/** What a usage object says for the console (its `consoleReport` answer). */
export type ObjectReport = Awaited<ReturnType<UsageObject["consoleReport"]>>;

/** The pools an organisation's requests are charged to: its tier's own, then each model family's with limits. */
export function poolsOf(config: GuardConfig, orgId: string): ResolvedLimits[] {
	const tiers = config.tiers;
	if (tiers === undefined) return [];
	const pools = [resolveLimits(tiers, orgId)];
	for (const family of tierOf(tiers, orgId).families) {
		if (family.limits !== undefined) pools.push(resolveLimits(tiers, orgId, undefined, family.name));
	}
	return pools;
}

/**
 * Asks an organisation's usage object for its console report. The answering isolate's own tally
 * of that organisation goes with it, so what this isolate counted is in the answer.
 */
export async function readOrgReport(namespace: UsageNamespace, config: GuardConfig, orgId: string, minutes: number, days: number): Promise<ObjectReport> {
	const tally = usageTally.take(orgId);
	const stub = namespace.get(namespace.idFromName(orgId));
	try {
		const report = (await bounded(
			stub.consoleReport({ pools: poolsOf(config, orgId), minutes, days, console: { ...(tally ? { tally } : {}), revocationsSeen: revocationBook.seen(orgId) } } as never),
			orgId,
		)) as ObjectReport;
		revocationBook.learn(orgId, report.console?.revocations ?? report.revocations, Date.now());
		return report;
	} catch (error) {
		usageTally.restore(orgId, tally);
		throw error;
	}
}

/** Puts a key on (or takes it off) its organisation's revocation list, and this isolate's book. */
export async function tellRevocation(namespace: UsageNamespace, orgId: string, keyId: string, revoked: boolean): Promise<void> {
	const stub = namespace.get(namespace.idFromName(orgId));
	const list = await bounded(revoked ? stub.revokeKey({ keyId }) : stub.restoreKey({ keyId }), orgId);
	revocationBook.learn(orgId, list, Date.now());
}

async function bounded<T>(call: Promise<T>, orgId: string): Promise<T> {
	let answer: T | typeof TIMED_OUT;
	try {
		answer = await within(call, OBJECT_TIMEOUT_MS);
	} catch (cause) {
		throw new GuardError(500, `The usage object of ${orgId} failed; retry shortly.`, { type: "api_error", cause, detail: { admin_usage: String(cause) } });
	}
	if (answer === TIMED_OUT) throw new GuardError(504, `The usage object of ${orgId} did not answer within ${OBJECT_TIMEOUT_MS} ms.`, { type: "timeout_error" });
	return answer;
}
