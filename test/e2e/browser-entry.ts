/**
 * The page's script in test/e2e/browser.test.ts, bundled for the browser by esbuild: the official
 * SDK with `dangerouslyAllowBrowser`, as a web app would use it. Each function returns plain data
 * (errors included), so the test reads it through `page.evaluate`.
 */
import Anthropic from "@anthropic-ai/sdk";

/** Where the guard is and which key the page uses. */
export interface Target {
	readonly baseURL: string;
	readonly apiKey: string;
}

/** What a call ended with, as plain data: its result, or the error the SDK raised. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly name: string; readonly message: string };

const PARAMS = { model: "claude-sonnet-4-6", max_tokens: 64 } as const;

function client({ baseURL, apiKey }: Target): Anthropic {
	return new Anthropic({ baseURL, apiKey, dangerouslyAllowBrowser: true, maxRetries: 0 });
}

async function outcome<T>(run: () => Promise<T>): Promise<Outcome<T>> {
	try {
		return { ok: true, value: await run() };
	} catch (error) {
		return { ok: false, name: error instanceof Error ? error.constructor.name : typeof error, message: String(error) };
	}
}

/** Creates a message and reads its text and the `request-id` header. */
function message(target: Target, text: string): Promise<Outcome<{ text: string; requestId: string | null }>> {
	return outcome(async () => {
		const { data, request_id } = await client(target)
			.messages.create({ ...PARAMS, messages: [{ role: "user", content: text }] })
			.withResponse();
		const block = data.content[0];
		return { text: block?.type === "text" ? block.text : "", requestId: request_id ?? null };
	});
}

/** Streams a message with the SDK's helper and collects its text deltas. */
function stream(target: Target, text: string): Promise<Outcome<{ deltas: string[]; text: string; stopReason: string | null }>> {
	return outcome(async () => {
		const deltas: string[] = [];
		const running = client(target).messages.stream({ ...PARAMS, messages: [{ role: "user", content: text }] });
		running.on("text", (delta) => deltas.push(delta));
		const final = await running.finalMessage();
		const block = final.content[0];
		return { deltas, text: block?.type === "text" ? block.text : "", stopReason: final.stop_reason };
	});
}

/** Lists models until the key is refused, and reads the RateLimitError as a page can. */
function rateLimit(target: Target, attempts: number): Promise<Outcome<Record<string, string | number | null>>> {
	return outcome(async () => {
		const api = client(target);
		for (let i = 0; i < attempts; i++) {
			try {
				await api.models.list();
			} catch (error) {
				if (!(error instanceof Anthropic.RateLimitError)) throw error;
				return {
					requests: i + 1,
					status: error.status,
					requestID: error.requestID ?? null,
					retryAfter: error.headers?.get("retry-after") ?? null,
					retryAfterMs: error.headers?.get("retry-after-ms") ?? null,
					limit: error.headers?.get("anthropic-ratelimit-requests-limit") ?? null,
					type: (error.error as { error?: { type?: string } } | undefined)?.error?.type ?? null,
				};
			}
		}
		throw new Error(`no 429 after ${attempts} requests`);
	});
}

/** A plain fetch without the opt-in header, as a page that forgot it sends. */
function withoutOptIn({ baseURL, apiKey }: Target): Promise<Outcome<{ status: number; body: unknown; requestId: string | null }>> {
	return outcome(async () => {
		const response = await fetch(`${baseURL}/v1/models`, { headers: { "x-api-key": apiKey, "anthropic-version": "2023-06-01" } });
		return { status: response.status, body: await response.json(), requestId: response.headers.get("request-id") };
	});
}

const api = { message, stream, rateLimit, withoutOptIn };
/** What the page exposes to the test. */
export type GuardPage = typeof api;
(globalThis as unknown as { guardPage: GuardPage }).guardPage = api;
