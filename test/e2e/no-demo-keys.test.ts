import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { experimental_readRawConfig } from "wrangler";

const ROOT = resolve(__dirname, "../..");
const DEMO = /sk-demo/;

describe("demo keys stay local", () => {
	it("appear in no wrangler environment's configuration", () => {
		const { rawConfig } = experimental_readRawConfig({ config: resolve(ROOT, "wrangler.toml") });
		expect(JSON.stringify(rawConfig)).not.toMatch(DEMO);
		expect(readFileSync(resolve(ROOT, "wrangler.toml"), "utf8")).not.toMatch(DEMO);
	});

	it("appear nowhere in the Worker that wrangler deploy uploads", async () => {
		const bundle = await build({
			entryPoints: [resolve(ROOT, "src/index.ts")],
			bundle: true,
			write: false,
			format: "esm",
			platform: "neutral",
			conditions: ["workerd", "worker", "browser"],
			external: ["cloudflare:*"],
		});
		const text = bundle.outputFiles.map((file) => file.text).join("\n");
		expect(text.length).toBeGreaterThan(1000);
		expect(text).not.toMatch(DEMO);
	});
});
