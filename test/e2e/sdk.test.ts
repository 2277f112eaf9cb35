import Anthropic, { toFile } from "@anthropic-ai/sdk";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, freshOrg } from "./accounting-kit";
import { tightOrgsVar } from "./hostile-kit";
import { type LocalServer, startLocalServer } from "./local-server";

const REQUEST_ID = /^req_[0-9A-Za-z]{24}$/;
/** The RateLimitError test's organisation, its own on the tight tier (10 requests a minute). */
const TIGHT_ORG = freshOrg("sdk_429");
let server: LocalServer;
let client: Anthropic;

beforeAll(async () => {
	server = await startLocalServer(tightOrgsVar([TIGHT_ORG]));
	client = new Anthropic({ apiKey: "sk-demo-key", baseURL: server.url, maxRetries: 0 });
});

afterAll(async () => {
	await server?.stop();
});

describe("the official SDK against npm start's server", () => {
	it("creates a message", async () => {
		const message = await client.messages.create({
			model: "claude-demo",
			max_tokens: 64,
			messages: [{ role: "user", content: "Hello, guard" }],
		});
		expect(message.type).toBe("message");
		expect(message.usage.output_tokens).toBeGreaterThan(0);
		expect(message._request_id).toMatch(REQUEST_ID);
	});

	it("streams a message, event by event", async () => {
		const { data: stream, request_id } = await client.messages
			.create({ model: "claude-demo", max_tokens: 64, stream: true, messages: [{ role: "user", content: "Stream, please" }] })
			.withResponse();
		expect(request_id).toMatch(REQUEST_ID);
		const types: string[] = [];
		for await (const event of stream) types.push(event.type);
		expect(types[0]).toBe("message_start");
		expect(types).toContain("content_block_delta");
		expect(types.at(-2)).toBe("message_delta");
		expect(types.at(-1)).toBe("message_stop");
	});

	it("collects a streamed message with the stream helper", async () => {
		const final = await client.messages
			.stream({ model: "claude-demo", max_tokens: 64, messages: [{ role: "user", content: "Helper" }] })
			.finalMessage();
		expect(final.content[0]?.type).toBe("text");
		expect(final.stop_reason).toBe("end_turn");
	});

	it("counts tokens", async () => {
		const { input_tokens, _request_id } = await client.messages.countTokens({
			model: "claude-demo",
			messages: [{ role: "user", content: "Count me" }],
		});
		expect(input_tokens).toBeGreaterThan(0);
		expect(_request_id).toMatch(REQUEST_ID);
	});

	it("lists and gets models", async () => {
		const page = await client.models.list();
		expect(page.data.length).toBeGreaterThan(0);
		const first = page.data[0];
		if (!first) throw new Error("no models");
		const model = await client.models.retrieve(first.id);
		expect(model.id).toBe(first.id);
		expect(model._request_id).toMatch(REQUEST_ID);
	});

	it("uploads a file and gets its exact size back", async () => {
		const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
		const file = await client.beta.files.upload({ file: await toFile(bytes, "data.bin", { type: "application/octet-stream" }) });
		expect(file.size_bytes).toBe(bytes.byteLength);
		expect(file._request_id).toMatch(REQUEST_ID);
		const fetched = await client.beta.files.retrieveMetadata(file.id);
		expect(fetched.size_bytes).toBe(bytes.byteLength);
		expect(createHash("sha256").update(bytes).digest("hex")).toHaveLength(64);
	});

	it("creates a batch and reads its results through the guard", async () => {
		const batch = await client.messages.batches.create({
			requests: [
				{ custom_id: "a", params: { model: "claude-demo", max_tokens: 16, messages: [{ role: "user", content: "one" }] } },
				{ custom_id: "b", params: { model: "claude-demo", max_tokens: 16, messages: [{ role: "user", content: "two" }] } },
			],
		});
		expect(batch._request_id).toMatch(REQUEST_ID);
		const fetched = await client.messages.batches.retrieve(batch.id);
		expect(new URL(fetched.results_url ?? "").origin).toBe(new URL(server.url).origin);
		const ids: string[] = [];
		for await (const result of await client.messages.batches.results(batch.id)) ids.push(result.custom_id);
		expect(ids.sort()).toEqual(["a", "b"]);
	});

	it("raises NotFoundError with the guard's request ID for an unknown route", async () => {
		const error = await client.get("/v1/nothing-here").catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(Anthropic.NotFoundError);
		expect((error as InstanceType<typeof Anthropic.NotFoundError>).requestID).toMatch(REQUEST_ID);
	});

	it("raises AuthenticationError with a req_ requestID for a bad key", async () => {
		const stranger = new Anthropic({ apiKey: "sk-guard-NotAKeyAnyoneHas000000000000000000000", baseURL: server.url, maxRetries: 0 });
		const error = await stranger.models.list().catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
		const typed = error as InstanceType<typeof Anthropic.AuthenticationError>;
		expect(typed.requestID).toMatch(REQUEST_ID);
		expect(typed.message).toContain("invalid x-api-key");
	});

	it("raises PermissionDeniedError with a req_ requestID for a key without the scope", async () => {
		const limited = new Anthropic({ apiKey: "sk-demo-messages-only", baseURL: server.url, maxRetries: 0 });
		expect((await limited.models.list()).data.length).toBeGreaterThan(0);
		const error = await limited.beta.files.list().catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(Anthropic.PermissionDeniedError);
		const typed = error as InstanceType<typeof Anthropic.PermissionDeniedError>;
		expect(typed.requestID).toMatch(REQUEST_ID);
		expect(typed.message).toContain("files");
		expect(typed.message).toContain("scope");
	});

	it("raises RateLimitError with a req_ requestID and a retry-after it can obey for a tight-tier key", async () => {
		const tight = new Anthropic({ apiKey: await createKey(server, TIGHT_ORG, ["models"]), baseURL: server.url, maxRetries: 0 });
		let error: unknown;
		for (let i = 0; i < 12 && error === undefined; i++) {
			error = await tight.models.list().then(
				() => undefined,
				(caught: unknown) => caught,
			);
		}
		expect(error).toBeInstanceOf(Anthropic.RateLimitError);
		const typed = error as InstanceType<typeof Anthropic.RateLimitError>;
		expect(typed.requestID).toMatch(REQUEST_ID);
		const retryAfter = Number(typed.headers?.get("retry-after"));
		expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
		expect(typed.headers?.get("anthropic-ratelimit-requests-limit")).toBe("10");
	});
});
