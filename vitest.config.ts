import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
// @ts-expect-error: a plain ES module shared with the scripts; its JSDoc types are not checked here.
import { buildWorker } from "./scripts/lib/build-worker.mjs";

export default defineConfig({
	test: {
		projects: [
			{
				plugins: [
					cloudflareTest(async () => ({
						main: "./src/index.ts",
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							// Global fetch() from the guard (origins given as URLs) reaches the sink.
							outboundService: "sink-origin",
							serviceBindings: { SINK: "sink-origin" },
							workers: [
								{
									name: "edge-guard-demo-origin",
									modules: true,
									scriptPath: await buildWorker("demo-origin/src/index.ts", "demo-origin"),
									compatibilityDate: "2026-04-01",
									compatibilityFlags: ["enable_request_signal"],
								},
								{
									name: "sink-origin",
									modules: true,
									scriptPath: await buildWorker("test/fixtures/sink-origin.ts", "sink-origin"),
									compatibilityDate: "2026-04-01",
									compatibilityFlags: ["enable_request_signal"],
								},
							],
						},
					})),
				],
				test: {
					name: "workers",
					include: ["test/**/*.test.ts"],
					exclude: ["test/e2e/**"],
					setupFiles: ["./test/setup.ts"],
					silent: "passed-only",
					// The property tests' seed (test/property-seed.ts): FC_SEED=... reproduces a failed run.
					provide: { fcSeed: process.env.FC_SEED ?? "" },
				},
			},
			{
				test: {
					name: "e2e",
					include: ["test/e2e/**/*.test.ts"],
					environment: "node",
					testTimeout: 60_000,
					hookTimeout: 60_000,
				},
			},
		],
	},
});
