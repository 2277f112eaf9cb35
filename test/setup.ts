import { env } from "cloudflare:workers";
import { beforeAll } from "vitest";
import { seedKey, TEST_KEY } from "./keys";

beforeAll(async () => {
	if (!env.KEYS) throw new Error("the tests need the KEYS binding from wrangler.toml");
	await seedKey(env.KEYS, TEST_KEY, { id: "key_test_all", org_id: "org_test" });
});
