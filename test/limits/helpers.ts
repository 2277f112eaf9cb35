import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { AccelerationConfig, BucketLimits, ResolvedLimits } from "../../src/limits/decisions";
import { type LimiterClientOptions, LimiterClient } from "../../src/limits/client/limiter-client";
import { parseTierConfig, type TierTable } from "../../src/limits/rates/tiers";
import type { UsageObject } from "../../src/limits/usage-object/usage-object";

/** Whether the Worker under test binds the usage object (tests of it are skipped otherwise). */

/** A clock the tests move by hand, shared by the objects and clients that read it. */
export interface FakeClock {
	now: number;
	read: () => number;
	advance: (ms: number) => void;
}

export function fakeClock(start = 1_800_000_000_000): FakeClock {
	const clock: FakeClock = {
		now: start,
		read: () => clock.now,
		advance: (ms) => {
			clock.now += ms;
		},
	};
	return clock;
}

/** A fresh organisation id, so no test sees another's state. */
export function newOrg(): string {
	return `org_${crypto.randomUUID()}`;
}

export function usageNamespace(): DurableObjectNamespace<UsageObject> {
	if (env.USAGE === undefined) throw new Error("these tests need the USAGE Durable Object binding");
	return env.USAGE;
}

/** The organisation's object, with its clock set to `clock`. */
export async function usageObject(orgId: string, clock: FakeClock): Promise<DurableObjectStub<UsageObject>> {
	const namespace = usageNamespace();
	const stub = namespace.get(namespace.idFromName(orgId));
	await runInDurableObject(stub, (instance) => {
		instance.clock = () => clock.now;
	});
	return stub;
}

/** Limits for direct object calls. */
export function limits(
	organization: Partial<BucketLimits> = {},
	options: { acceleration?: AccelerationConfig; workspace?: { id: string; limits: Partial<BucketLimits> } } = {},
): ResolvedLimits {
	return {
		tier: "test",
		organization: { requestsPerMinute: 1000, inputTokensPerMinute: 1_000_000, outputTokensPerMinute: 1_000_000, ...organization },
		workspace: options.workspace,
		acceleration: options.acceleration,
	};
}

/** A tier table with one `default` tier, from TOML-shaped fields. */
export function tierTable(fields: Record<string, unknown> = {}, extra: { ORG_TIERS?: unknown; WORKSPACE_LIMITS?: unknown; TIERS?: Record<string, unknown> } = {}): TierTable {
	return parseTierConfig({
		TIERS: {
			default: { requests_per_minute: 1000, input_tokens_per_minute: 1_000_000, output_tokens_per_minute: 1_000_000, ...fields },
			...extra.TIERS,
		},
		ORG_TIERS: extra.ORG_TIERS,
		WORKSPACE_LIMITS: extra.WORKSPACE_LIMITS,
	});
}

/** A client over the real namespace, on the fake clock, that keeps background renewals for `settled()`. */
export function client(
	tiers: TierTable,
	clock: FakeClock,
	options: Partial<LimiterClientOptions> = {},
): LimiterClient & { background: Promise<unknown>[] } {
	const background: Promise<unknown>[] = [];
	const limiter = new LimiterClient({
		namespace: usageNamespace(),
		tiers,
		now: clock.read,
		waitUntil: (promise) => {
			background.push(promise);
		},
		...options,
	});
	return Object.assign(limiter, { background });
}
