// @ts-check
/**
 * Mutation testing of the pure modules (`npm run mutants`; not part of `npm test` or CI). Their tests
 * run in Node through vitest.mutants.config.ts. The machine may be shared: one test runner by
 * default; `STRYKER_CONCURRENCY=2 npm run mutants` for more. Reports go to reports/mutation/.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
	testRunner: "vitest",
	vitest: { configFile: "vitest.mutants.config.ts" },
	plugins: ["@stryker-mutator/vitest-runner"],
	coverageAnalysis: "perTest",
	mutate: [
		"src/limits/rates/token-bucket.ts",
		"src/limits/rates/bucket-specs.ts",
		"src/limits/rates/acceleration.ts",
		"src/limits/rates/tiers.ts",
		"src/limits/rates/families.ts",
		"src/lib/json/*.ts",
		// Stryker 9.6's printer drops the parentheses of `(x as number) | (y as number)` on line 38, and the
		// result (`x as number | y as number`) no longer parses; the file cannot be instrumented as written.
		"!src/lib/json/bytes.ts",
		"src/lib/content-length.ts",
		"src/limits/spend/money.ts",
		"src/limits/spend/spend-ledger.ts",
		"src/config/route-table.ts",
	],
	reporters: ["clear-text", "html", "json", "progress"],
	htmlReporter: { fileName: "reports/mutation/index.html" },
	jsonReporter: { fileName: "reports/mutation/mutation.json" },
	clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
	concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 1),
	tempDirName: ".stryker-tmp",
	cleanTempDir: true,
	timeoutMS: 10_000,
	incremental: false,
};
