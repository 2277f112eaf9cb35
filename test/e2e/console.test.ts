import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { chromiumPath } from "./browser-page";
import { type LocalServer, startLocalServer } from "./local-server";
import { runNode } from "./run-node";

const ROOT = resolve(__dirname, "../..");
/** Where the screenshot goes (a CI artefact); CONSOLE_SCREENSHOT_DIR moves it. */
const ARTIFACTS = resolve(ROOT, process.env.CONSOLE_SCREENSHOT_DIR ?? "test-artifacts");
const ADMIN_TOKEN = "demo-admin-token";
const ADMITTED_RGB = [0x2f, 0x7d, 0x4a];
const REFUSED_RGB = [0xc0, 0x39, 0x2b];

interface Series {
	start: string;
	step_seconds: number;
	admitted: number[];
	refused: Record<string, number[]>;
}

/**
 * The organisation the README's 429 loop drains: its own, on the tight tier (10 requests a minute),
 * never org_tight, which other files drain too. The console lists the first 200 organisations in
 * ID order, so its ID sorts before every other ("org_0" and a counter that falls as time passes,
 * the newest run first) however many organisations the local state holds.
 */
const LOOP_ORG = `org_0console_${(36 ** 9 - Date.now()).toString(36).padStart(9, "0")}${randomBytes(2).toString("hex")}`;

let server: LocalServer;
let consoleUrl: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

async function adminApi<T>(path: string, init: RequestInit = {}): Promise<T> {
	const response = await fetch(new URL(`/_guard/api${path}`, server.url), {
		...init,
		headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", ...init.headers },
	});
	const text = await response.text();
	if (!response.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${response.status} ${text}`);
	return JSON.parse(text) as T;
}

function models(key: string): Promise<Response> {
	return fetch(new URL("/v1/models", server.url), { headers: { "x-api-key": key, "anthropic-version": "2023-06-01" } });
}

/** The console URL npm start prints on the line after the one startLocalServer waits for. */
async function printedConsoleUrl(local: LocalServer): Promise<string> {
	const line = /operator console: (http:\/\/\S+) \(admin token: demo-admin-token, local only\)/;
	const deadline = Date.now() + 10_000;
	for (;;) {
		const found = line.exec(local.output())?.[1];
		if (found !== undefined) return found;
		if (Date.now() > deadline) throw new Error(`npm start did not print the console's URL:\n${local.output()}`);
		await new Promise<void>((next) => setImmediate(next));
	}
}

/** Clicks Refresh and waits until the page has drawn answers newer than `since`. */
async function refreshPage(): Promise<void> {
	const before = await page.evaluate(() => document.body.dataset.refreshed ?? "");
	await page.click("#refresh");
	await page.waitForFunction((previous) => (document.body.dataset.refreshed ?? "") !== previous, { timeout: 15_000 }, before);
}

beforeAll(async () => {
	const executablePath = chromiumPath();
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"));
	const orgTiers = { ...(workerOptions.bindings?.ORG_TIERS as Record<string, string>), [LOOP_ORG]: "tight" };
	server = await startLocalServer(["--var", `ORG_TIERS=${JSON.stringify(orgTiers)}`]);
	consoleUrl = await printedConsoleUrl(server);
	browser = await puppeteer.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
	page = await browser.newPage();
	await page.setViewport({ width: 1400, height: 1000 });
	page.on("pageerror", (error) => pageErrors.push(String(error)));
	page.on("console", (message) => {
		if (message.type() === "error") pageErrors.push(message.text());
	});
});

afterAll(async () => {
	await browser?.close();
	await server?.stop();
});

describe("the operator console in Chromium, against npm start", () => {
	let key: string;
	let keyId: string;

	it("is printed by npm start and served at /_guard/ without any CDN", () => {
		expect(new URL(consoleUrl).pathname).toBe("/_guard/");
		expect(new URL(consoleUrl).origin).toBe(new URL(server.url).origin);
	});

	it("shows the README's 429 loop, admitted and refused, as the admin API counts it and as the requests were answered", async () => {
		// The README's loop on a tight-tier organisation of the test's own: 10 requests a minute, so of 12 some are refused.
		const loopKey = (
			await adminApi<{ key: string }>("/keys", { method: "POST", body: JSON.stringify({ org_id: LOOP_ORG, scopes: ["models"], name: "console e2e loop" }) })
		).key;
		const statuses: number[] = [];
		for (let i = 0; i < 12; i++) {
			const response = await models(loopKey);
			statuses.push(response.status);
			await response.arrayBuffer();
		}
		expect(statuses).toContain(429);
		expect(statuses.filter((status) => status !== 200 && status !== 429)).toEqual([]);
		const created = await adminApi<{ key: string; record: { id: string } }>("/keys", {
			method: "POST",
			body: JSON.stringify({ org_id: "org_console_e2e", scopes: ["models", "messages"], name: "console e2e" }),
		});
		key = created.key;
		keyId = created.record.id;
		for (let i = 0; i < 3; i++) expect((await models(key)).status).toBe(200);
		const message = await fetch(new URL("/v1/messages", server.url), {
			method: "POST",
			headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
			body: JSON.stringify({ model: "claude-sonnet-4-6", max_tokens: 32, messages: [{ role: "user", content: "Hello, console" }] }),
		});
		expect(message.status).toBe(200);
		await message.arrayBuffer();

		await page.goto(consoleUrl, { waitUntil: "networkidle0" });
		await page.type("#token", ADMIN_TOKEN);
		await page.click('#login button[type="submit"]');
		await page.waitForFunction(() => document.body.dataset.refreshed !== undefined, { timeout: 20_000 });
		await refreshPage();

		const { org } = await adminApi<{ org: { history: { minutes: Series } } }>(`/orgs/${LOOP_ORG}?minutes=60&days=1`);
		const drawn = await page.evaluate((org) => {
			const state = (globalThis as unknown as { edgeGuardConsole: { charts: Map<string, { plot: { data: number[][]; series: { label?: string }[] } }> } }).edgeGuardConsole;
			const chart = state.charts.get(`${org}|requests`);
			return chart ? { data: chart.plot.data, labels: chart.plot.series.map((series) => series.label ?? "") } : null;
		}, LOOP_ORG);
		expect(drawn).not.toBeNull();
		const api = org.history.minutes;
		// The API counts what was answered: every 200 admitted, every 429 refused, once each.
		const sum = (series: number[]) => series.reduce((total, n) => total + n, 0);
		expect(sum(api.admitted), `admitted, for answers ${statuses.join(", ")}`).toBe(statuses.filter((status) => status === 200).length);
		expect(
			Object.values(api.refused).reduce((total, series) => total + sum(series), 0),
			`refused, for answers ${statuses.join(", ")}`,
		).toBe(statuses.filter((status) => status === 429).length);
		const startSeconds = Date.parse(api.start) / 1000;
		const apiAt = new Map(api.admitted.map((admitted, i) => [startSeconds + i * api.step_seconds, { admitted, refused: Object.values(api.refused).reduce((sum, series) => sum + (series[i] ?? 0), 0) }]));
		const [xs = [], ...stacks] = drawn?.data ?? [];
		const labels = drawn?.labels.slice(1) ?? [];
		// Bars are stacked: the bottom series is the admitted count, the top one admitted plus every refusal.
		const bottom = stacks[labels.indexOf("admitted")] ?? [];
		const top = stacks[0] ?? [];
		let compared = 0;
		let refusedDrawn = 0;
		for (const [i, x] of xs.entries()) {
			const expected = apiAt.get(x);
			if (expected === undefined) continue;
			expect(bottom[i], `admitted at ${x}`).toBe(expected.admitted);
			expect(top[i], `admitted + refused at ${x}`).toBe(expected.admitted + expected.refused);
			refusedDrawn += (top[i] ?? 0) - (bottom[i] ?? 0);
			compared++;
		}
		expect(compared).toBeGreaterThanOrEqual(59);
		expect(refusedDrawn).toBeGreaterThan(0);
		expect(labels).toContain("refused: requests");

		// The canvas has bars of both colours: the chart really drew them.
		const colours = await page.evaluate(
			(admitted, refused, org) => {
				const canvas = document.querySelector<HTMLCanvasElement>(`[data-org="${org}"] .plot-requests canvas`);
				const context = canvas?.getContext("2d");
				if (!canvas || !context) return { admitted: 0, refused: 0 };
				const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
				const near = (i: number, rgb: number[]) => rgb.every((value, c) => Math.abs((pixels[i + c] ?? 0) - value) <= 2);
				let a = 0;
				let r = 0;
				for (let i = 0; i < pixels.length; i += 4) {
					if (near(i, admitted)) a++;
					else if (near(i, refused)) r++;
				}
				return { admitted: a, refused: r };
			},
			ADMITTED_RGB,
			REFUSED_RGB,
			LOOP_ORG,
		);
		// A handful of pixels at least: a bar's height scales with the busiest minute of the hour.
		expect(colours.admitted).toBeGreaterThan(4);
		expect(colours.refused).toBeGreaterThan(4);

		const lastHour = await page.$eval(`[data-org="${LOOP_ORG}"] [data-fact="last hour"]`, (node) => node.textContent);
		const apiAdmitted = api.admitted.reduce((sum, n) => sum + n, 0);
		const apiRefused = Object.values(api.refused).reduce((sum, series) => sum + series.reduce((a, b) => a + b, 0), 0);
		expect(lastHour).toBe(`${apiAdmitted} admitted, ${apiRefused} refused`);
		const breaker = await page.$eval('[data-origin="service:ORIGIN"]', (node) => node.textContent);
		// Its state, then its recent failure rate (the breaker's window) as the health view gives it.
		expect(breaker).toMatch(/^breaker service:ORIGIN: closed, (no|0% of \d+) recent failures$/);
		const spend = await page.$eval(`[data-org="${LOOP_ORG}"] [data-fact="spend today"]`, (node) => node.textContent);
		expect(spend).toContain("no budget");
		expect(pageErrors).toEqual([]);
	});

	it("stops a key with its disable button: the next request with it is refused", async () => {
		const button = `button[data-key-id="${keyId}"][data-action="disable"]`;
		await page.waitForSelector(button);
		// Clicked in the page, in one task with finding it: a mouse click goes to where the button was
		// when it was found, and a refresh that redraws the tables in between (seen on a busy machine)
		// leaves that spot to something else, so the click never reaches the button.
		await page.$eval(button, (node) => (node as HTMLButtonElement).click());
		// Waits for the row to show the change itself: a refresh counter can move for a timer refresh
		// that fetched the keys before the click's PATCH landed, leaving the row still "active".
		const cell = `tr[data-key-id="${keyId}"] td.status-disabled`;
		await page.waitForSelector(cell, { timeout: 30_000 }).catch(async (error: Error) => {
			// Says what the page said (a failed PATCH shows there), not only that the row never changed.
			const said = await page.$eval("#status", (node) => node.textContent).catch(() => "(no status)");
			throw new Error(`${error.message}; the console's status line: ${said}`);
		});
		const status = await page.$eval(cell, (node) => node.textContent);
		expect(status).toBe("disabled");
		// The key was used a moment ago, so the isolate's key cache (30 s) still holds it as active:
		// the revocation list is what refuses it (this isolate's copy, written by the PATCH; other
		// isolates learn it from the usage object, test/admin/revocation.test.ts).
		const refused = await models(key);
		expect(refused.status).toBe(401);
		expect(((await refused.json()) as { error: { message: string } }).error.message).toBe("invalid x-api-key");

		await page.evaluate(() => window.scrollTo(0, 0));
		mkdirSync(ARTIFACTS, { recursive: true });
		const screenshot = resolve(ARTIFACTS, "console.png");
		await page.screenshot({ path: screenshot as `${string}.png`, fullPage: true });
		console.log(`console screenshot: ${screenshot}`);
		if (process.env.CONSOLE_SCREENSHOT_DOCS === "1") {
			mkdirSync(resolve(ROOT, "docs"), { recursive: true });
			copyFileSync(screenshot, resolve(ROOT, "docs/console.png"));
			console.log(`console screenshot copied to ${resolve(ROOT, "docs/console.png")}`);
		}
		await adminApi(`/keys/${keyId}`, { method: "DELETE" });
	});

	it("npm run keys -- disable tells the running guard too: the key stops at once", async () => {
		const created = await adminApi<{ key: string; record: { id: string } }>("/keys", {
			method: "POST",
			body: JSON.stringify({ org_id: "org_console_e2e", scopes: ["models"], name: "console e2e cli" }),
		});
		expect((await models(created.key)).status).toBe(200);
		// Async: a synchronous spawn would block this event loop while the server closes a kept-alive
		// connection, and the next fetch would reuse it dead ("other side closed").
		const run = await runNode(["scripts/keys.mjs", "disable", created.record.id], {
			cwd: ROOT,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", EDGE_GUARD_URL: server.url },
		});
		expect(run.status, run.stderr).toBe(0);
		expect(run.stdout).toContain(`${created.record.id} is disabled.`);
		expect(run.stdout).toContain("was told: every isolate refuses it");
		expect(run.stdout).not.toContain(ADMIN_TOKEN);
		expect((await models(created.key)).status).toBe(401);
		await adminApi(`/keys/${created.record.id}`, { method: "DELETE" });
	});
});
