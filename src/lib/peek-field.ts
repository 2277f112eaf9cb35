import { scanTopLevelFields } from "./json/top-level-fields";
import { TIMED_OUT, within } from "./within";

/** How far {@link peekTopLevelString} may look. */
export interface PeekBounds {
	/** The most body bytes read. */
	readonly maxBytes: number;
	/** The longest it waits for them, ms. */
	readonly maxMs: number;
}

/**
 * The string value of a top-level field of a request's JSON body, read from the body's first
 * bytes without taking them from the request: `request.clone()` tees the body (natively, in
 * workerd), the request keeps one branch and the peek reads the other, then cancels it, so the
 * request's body still holds every byte for the origin. `undefined` when the field is not a string
 * within the bounds (it comes later, the body is not a JSON object, or is slow to arrive).
 */
export async function peekTopLevelString(request: Request, field: string, bounds: PeekBounds): Promise<string | undefined> {
	if (request.body === null || request.bodyUsed) return undefined;
	const reader = request.clone().body?.getReader();
	if (reader === undefined) return undefined;
	const scan = scanTopLevelFields([field]);
	const deadline = Date.now() + bounds.maxMs;
	let bytes = 0;
	try {
		while (bytes < bounds.maxBytes) {
			const next = await within(reader.read(), Math.max(0, deadline - Date.now()));
			if (next === TIMED_OUT || next.done) return undefined;
			bytes += next.value.byteLength;
			scan.push(next.value);
			const found = scan.fields.get(field);
			if (found !== undefined) return found.kind === "string" ? found.value : undefined;
			if (scan.state !== "scanning") return undefined;
		}
		return undefined;
	} catch {
		return undefined;
	} finally {
		// Cancelling the peek's branch leaves the request's branch to flow on its own.
		reader.cancel().catch(() => undefined);
	}
}
