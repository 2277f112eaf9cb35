// What the limits tests read from `env` when the Worker under test declares it: the usage
// object's binding ([[durable_objects.bindings]] USAGE -> UsageObject) and the tier tables.
declare namespace Cloudflare {
	interface Env {
		USAGE?: DurableObjectNamespace<import("../../src/limits/usage-object/usage-object").UsageObject>;
		TIERS?: unknown;
		ORG_TIERS?: unknown;
		WORKSPACE_LIMITS?: unknown;
	}
}
