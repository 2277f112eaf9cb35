import { defineConfig } from "vitest/config";

/**
 * The unit tests of the pure modules, run in Node for `npm run mutants` (StrykerJS). Stryker's
 * vitest runner drives Node workers and cannot run a test inside workerd, so only files that import
 * neither `cloudflare:test` nor `cloudflare:workers` (nor the Worker's `Env`) are listed. Each of them
 * also runs in the workers pool with `npm test` (vitest.config.ts includes test/**).
 */
export const PURE_TESTS = [
	"test/pure/**/*.test.ts",
	"test/limits/token-bucket.test.ts",
	"test/limits/acceleration.test.ts",
	"test/content-length.property.test.ts",
	"test/json-scan.property.test.ts",
	"test/json-fields.test.ts",
	"test/batch-requests.test.ts",
];

/**
 * Tests left out of mutation runs: they feed the scanners megabytes or hundreds of thousands of
 * levels to bound memory and depth, and under Stryker's per-statement counters each takes minutes.
 * They still run in `npm test`; a mutant only they would kill is reported as not covered.
 */
const HEAVY = ["50 MB body", "300,000 levels", "10,001 levels deep"];

export default defineConfig({
	test: {
		name: "pure",
		include: PURE_TESTS,
		environment: "node",
		// Under Stryker's instrumentation the 50 MB scans take several times their usual seconds.
		testTimeout: 60_000,
		testNamePattern: new RegExp(`^(?!.*(?:${HEAVY.join("|")}))`),
		silent: "passed-only",
	},
});
