import { GuardError } from "../errors/guard-error";
import { declaredLength } from "../lib/content-length";
import { BodyStalledError, readBoundedBytes } from "../lib/read-bounded";
import { type ReportedUsage, usageOfBody, usageReader } from "../lib/usage-tap";
import { watchBody } from "../lib/watch-body";
import type { LimitOutcome } from "../limits/client/enforce-limits";
import type { Admitted, Overload } from "../overload/admission";
import { readableAnswer } from "../proxy/answer-coding";
import { corsHeaders } from "../cors/cors";
import { clientResponseHeaders } from "../proxy/headers";
import { honestEventStream } from "../proxy/honest-stream";
import { normaliseOriginError } from "../proxy/origin-error";
import { scanTopLevelFields } from "../lib/json/top-level-fields";
import { rewriteResponseUrls } from "../proxy/rewrite-urls";
import { sseUsageReader, sseUsageTap } from "../sse/sse-usage";
import type { Exchange } from "./exchange";
import type { Reached } from "./forward";

/**
 * Stage 7: the client's answer from the origin's. An origin error becomes the envelope; an event
 * stream goes through the honest stream (whole events, pings, an `error` event if the origin
 * breaks it); `rewrite_urls` fields point at the guard; any other body streams through a watch
 * that cuts it off if it stalls for `stream_idle_timeout_seconds`. An encoded answer is handed on
 * decoded. A streamed answer the client takes nothing of for `client_idle_timeout_seconds` is cut
 * off too. Usage the origin reports is settled when the body ends; the slot is freed when the
 * client has the body, leaves or is let go (a small answer, read whole, frees it before it is sent).
 */
export async function answer(exchange: Exchange, slot: Admitted, overload: Overload, limits: LimitOutcome | undefined, reached: Reached): Promise<Response> {
	const { request, route, config, state, target, incoming } = exchange;
	const { abortUpstream, body } = reached;
	// An encoded answer is read decoded (its usage is in the JSON), or passes untouched when it cannot be.
	const { upstream, opaque } = readableAnswer(reached.upstream);
	const idleMs = route.streamIdleTimeoutMs;
	// How the answer ended, for the log line: at once for one read whole, else when its body ends.
	let endedLater: ((bytesOut: number | undefined) => void) | undefined;
	const ended = (bytesOut: number | undefined) => {
		slot.release();
		if (endedLater !== undefined) endedLater(bytesOut);
		else state.answered = { bytesOut };
	};
	const endsLater = () => {
		if (state.answered === undefined) {
			state.bodyEnded = new Promise((resolve) => {
				endedLater = resolve;
			});
		}
	};
	const claim = limits?.claim;
	claim?.answering();
	// The claim settles once, whichever of the paths below ends the request first.
	const settle = (usage: ReportedUsage, shape: "json" | "sse" | "other" = "json") =>
		claim?.settle({ kind: "answered", status: upstream.status, shape, usage, bytesRead: body.bytes() });
	// Every path that ends the answer ends here: the claim settled (once) and the slot freed.
	const finish = (usage: ReportedUsage, bytesOut: number | undefined) => {
		settle(usage);
		ended(bytesOut);
	};
	const stalled = (where: string) => {
		state.decisions.response_body = { outcome: "stalled", where, idle_seconds: idleMs / 1000 };
		abortUpstream();
	};
	// Settled like a client that left: the answer is cut off, and the origin's request with it.
	const notReading = (bytesSent: number) => {
		state.decisions.response_body = { outcome: "client-not-reading", idle_seconds: route.clientIdleTimeoutMs / 1000, bytes_sent: bytesSent };
		abortUpstream();
	};
	// Nothing of the body was sent yet, so a stall can still be answered honestly.
	const stalledBeforeAnswer = (where: string): GuardError => {
		stalled(where);
		finish({}, undefined);
		return new GuardError(504, `The upstream service stopped sending its answer for ${idleMs / 1000} seconds.`, { type: "timeout_error" });
	};

	if (upstream.status >= 400) {
		const normalised = await normaliseOriginError(upstream, state.requestId, idleMs);
		if (normalised.stalled) stalled("origin-error-body");
		state.errorType = normalised.type;
		finish({}, declaredLength(normalised.response.headers) ?? undefined);
		return normalised.response;
	}
	// Every header the guard sets, set once here: the pipeline's last stages leave a stamped answer as it is.
	const cors = corsHeaders(request, config.cors);
	const headers = clientResponseHeaders(upstream.headers, state.requestId, cors === undefined ? state.responseHeaders : { ...state.responseHeaders, ...cors });
	const stamped = (response: Response): Response => {
		state.stamped = response;
		return response;
	};
	if (request.method === "HEAD" || upstream.body === null) {
		await upstream.body?.cancel().catch(() => undefined);
		finish({}, 0);
		return stamped(new Response(null, { status: upstream.status, statusText: upstream.statusText, headers }));
	}
	const kind = opaque ? undefined : usageKind(upstream.headers.get("content-type"));
	const meter = route.meterTokens && claim !== undefined ? kind : undefined;

	if (kind === "sse") {
		endsLater();
		const reader = meter ? sseUsageReader() : undefined;
		const tapped = reader === undefined ? upstream.body : upstream.body.pipeThrough(sseUsageTap((usage) => settle(usage, "sse"), reader));
		const stream = honestEventStream(tapped, route, state, {
			abortUpstream,
			overloaded: () => overload.breakerFor(target.name).state !== "closed",
			// However the stream ended (whole, cut by the origin, left by the client), what passed is settled.
			ended: (bytesOut) => {
				settle(reader?.end() ?? {}, reader === undefined ? "other" : "sse");
				ended(bytesOut);
			},
		});
		return stamped(new Response(stream, { status: upstream.status, statusText: upstream.statusText, headers }));
	}

	// Built once: the answer's status and headers, which the final response reuses.
	let response: ResponseInit & { body?: ReadableStream<Uint8Array> | null; headers: Headers } = {
		status: upstream.status,
		statusText: upstream.statusText,
		headers,
		body: upstream.body,
		// Bytes still in the origin's coding go out as they are, not encoded again by the runtime.
		encodeBody: opaque ? "manual" : "automatic",
	};
	if (route.rewriteUrls.length > 0 && !opaque) {
		try {
			response = await rewriteResponseUrls(new Response(upstream.body, response), route.rewriteUrls, config.publicUrl ?? incoming.origin, target.base, idleMs);
		} catch (error) {
			if (error instanceof BodyStalledError) throw stalledBeforeAnswer("rewrite-urls-body");
			finish({}, undefined);
			throw error;
		}
	}
	const source = response.body ?? null;
	if (source === null) {
		finish({}, 0);
		return stamped(new Response(null, response));
	}
	// A batch's results settle the batch's claim as they pass; a created batch takes over this request's claim.
	const batchId = route.settleBatchResults && upstream.status < 300 ? request.params?.id : undefined;
	const results = batchId === undefined ? undefined : claim?.batchResults(batchId);
	// A created batch's id, read as its answer passes: the batch takes over this request's claim.
	const created = route.meterBatches && upstream.status < 300 && claim !== undefined ? { claim, scan: scanTopLevelFields(["id"]) } : undefined;
	const holdCreated = () => {
		const id = created?.scan.fields.get("id");
		if (id?.kind === "string") created?.claim.holdForBatch(id.value);
	};
	const length = declaredLength(response.headers);
	const small = typeof length === "number" && length <= SMALL_BODY_BYTES;
	// A small answer's usage is read from its whole bytes; a longer one's as it passes.
	const usage = meter === "json" && !small ? usageReader() : undefined;
	if (small) {
		// Most answers are a few KB of JSON: one bounded read costs far less than a stream watch,
		// frees the slot at once, and turns a stall into an honest 504 before any byte is sent.
		let whole: Uint8Array | undefined;
		try {
			whole = await readBoundedBytes(source, length, idleMs);
		} catch (error) {
			if (error instanceof BodyStalledError) throw stalledBeforeAnswer("response-body");
			finish({}, undefined);
			throw error;
		}
		// The runtime frames a body by its Content-Length; one past it is not handed on as whole.
		if (whole === undefined) {
			finish({}, undefined);
			throw new GuardError(502, "The upstream service sent more than its content-length.", { type: "api_error" });
		}
		results?.push(whole);
		results?.end(true);
		created?.scan.push(whole);
		holdCreated();
		finish(meter === "json" ? usageOfBody(whole) : {}, whole.byteLength);
		return stamped(new Response(whole, response));
	}
	endsLater();
	const watched = watchBody(source, {
		length: typeof length === "number" ? length : undefined,
		idleMs,
		clientIdleMs: route.clientIdleTimeoutMs,
		onChunk:
			usage || results || created
				? (chunk) => {
						usage?.push(chunk);
						results?.push(chunk);
						created?.scan.push(chunk);
					}
				: undefined,
		onEnd: (bytes, end) => {
			if (end === "stalled") stalled("response-body");
			if (end === "client-not-reading") notReading(bytes);
			results?.end(end === "complete");
			if (end === "complete") holdCreated();
			finish(usage?.end() ?? {}, end === "complete" || typeof length !== "number" ? bytes : undefined);
		},
	});
	return stamped(new Response(watched, response));
}

/** A body with a stated length up to this is read whole before it is answered. */
const SMALL_BODY_BYTES = 64 * 1024;

function usageKind(contentType: string | null): "json" | "sse" | undefined {
	if (contentType?.includes("text/event-stream")) return "sse";
	if (contentType?.includes("json")) return "json";
	return undefined;
}
