import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GuardPage, Outcome, Target } from "./browser-entry";
import { chromiumPath, type PageServer, startPageServer } from "./browser-page";
import { createKey, freshOrg } from "./accounting-kit";
import { tightOrgsVar } from "./hostile-kit";
import { type LocalServer, startLocalServer } from "./local-server";

const REQUEST_ID = /^req_[0-9A-Za-z]{24}$/;
/** The 429 test's organisation, its own on the tight tier (10 requests a minute). */
const TIGHT_ORG = freshOrg("browser_429");

let guard: LocalServer;
let pages: PageServer;
let browser: Browser;
let page: Page;
/** What the page's console said during the last call (Chromium reports a request blocked by CORS there). */
const consoleLines: string[] = [];

beforeAll(async () => {
	const executablePath = chromiumPath();
	[guard, pages] = await Promise.all([startLocalServer(tightOrgsVar([TIGHT_ORG])), startPageServer()]);
	browser = await puppeteer.launch({
		executablePath,
		headless: true,
		// Root in a container has no user namespace for Chromium's sandbox.
		args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
	});
	page = await browser.newPage();
	page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
	page.on("pageerror", (error) => consoleLines.push(`pageerror: ${String(error)}`));
	await page.goto(`${pages.origin}/`);
	await page.waitForFunction(() => "guardPage" in globalThis);
});

afterAll(async () => {
	await browser?.close();
	await Promise.all([guard?.stop(), pages?.stop()]);
});

function target(apiKey = "sk-demo-key"): Target {
	return { baseURL: guard.url, apiKey };
}

/** Runs one of the page's functions in the page and returns its outcome. */
function inPage<K extends keyof GuardPage>(name: K, ...args: Parameters<GuardPage[K]>): Promise<Awaited<ReturnType<GuardPage[K]>>> {
	consoleLines.length = 0;
	return page.evaluate(
		(fn, fnArgs) => (globalThis as unknown as { guardPage: Record<string, (...a: unknown[]) => unknown> }).guardPage[fn]?.(...fnArgs),
		name,
		args as unknown[],
	) as Promise<Awaited<ReturnType<GuardPage[K]>>>;
}

/** The value of a successful outcome; otherwise fails with the error and what the console said. */
function valueFrom<T>(outcome: Outcome<T>): T {
	if (!outcome.ok) {
		throw new Error(`the page's call failed: ${outcome.name}: ${outcome.message}\npage console:\n${consoleLines.join("\n") || "(nothing)"}`);
	}
	return outcome.value;
}

describe("a page on another origin, using the official SDK with dangerouslyAllowBrowser, through the guard in Chromium", () => {
	it("is served from another origin than the guard's", () => {
		expect(new URL(pages.origin).origin).not.toBe(new URL(guard.url).origin);
	});

	it("creates a message and reads its request-id", async () => {
		const { text, requestId } = valueFrom(await inPage("message", target(), "Hello from a browser"));
		expect(text).toContain("Hello from a browser");
		expect(requestId).toMatch(REQUEST_ID);
	});

	it("streams a message delta by delta", async () => {
		const { deltas, text, stopReason } = valueFrom(await inPage("stream", target(), "Stream to a browser"));
		expect(deltas.length).toBeGreaterThanOrEqual(3);
		expect(deltas.join("")).toBe(text);
		expect(text).toContain("Stream to a browser");
		expect(stopReason).toBe("end_turn");
	});

	it("reads a 429's request-id, retry-after and rate-limit headers from the SDK's RateLimitError", async () => {
		// A fresh tight-tier organisation allows 10 requests a minute: the 11th is refused.
		const limited = valueFrom(await inPage("rateLimit", target(await createKey(guard, TIGHT_ORG, ["models", "messages"])), 12));
		expect(limited.status).toBe(429);
		expect(limited.type).toBe("rate_limit_error");
		expect(limited.requestID).toMatch(REQUEST_ID);
		expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
		expect(Number(limited.retryAfterMs)).toBeGreaterThan(0);
		expect(limited.limit).toBe("10");
	});

	it("reads the 401 that refuses a request without anthropic-dangerous-direct-browser-access", async () => {
		const refused = valueFrom(await inPage("withoutOptIn", target()));
		expect(refused.status).toBe(401);
		expect(refused.requestId).toMatch(REQUEST_ID);
		expect(refused.body).toMatchObject({
			type: "error",
			error: { type: "authentication_error", message: "CORS requests must set 'anthropic-dangerous-direct-browser-access' header" },
		});
	});
});
