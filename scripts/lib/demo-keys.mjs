// The demo keys `npm start` seeds into its local KV. Local only: no deployed configuration has
// them, and `test/production-config.test.ts` proves no wrangler environment or bundle does.

/** @type {{ key: string, id: string, org_id: string, name: string, scopes: string[] }[]} */
export const DEMO_KEYS = [
	{ key: "sk-demo-key", id: "key_demo_all", org_id: "org_demo", name: "demo: every scope", scopes: ["messages", "batches", "files", "models"] },
	{ key: "sk-demo-messages-only", id: "key_demo_messages", org_id: "org_demo", name: "demo: messages and models", scopes: ["messages", "models"] },
	// org_tight is on the `tight` tier in wrangler.toml: 10 requests per minute.
	{ key: "sk-demo-tight", id: "key_demo_tight", org_id: "org_tight", name: "demo: 10 requests per minute", scopes: ["messages", "batches", "files", "models"] },
	// org_budget is on the `budget` tier in wrangler.toml: $0.0024 a day, spent by a dozen demo messages.
	{ key: "sk-demo-budget", id: "key_demo_budget", org_id: "org_budget", name: "demo: a daily spend budget", scopes: ["messages", "batches", "files", "models"] },
];
