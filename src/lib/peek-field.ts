import { type FieldScan, scanTopLevelFields } from "./json/top-level-fields";
import { TIMED_OUT, within } from "./within";

/** How far {@link peekScan} may look. */
export interface PeekBounds {
	/** The most body bytes read. */
	readonly maxBytes: number;
	/** The longest it waits for them, ms. */
	readonly maxMs: number;
}

/** A streaming reader of a JSON body that a peek can feed: the top-level field scan, or a batch's. */
export interface BodyScan {
	push(chunk: Uint8Array): void;
	end(): void;
	readonly state: "scanning" | "complete" | "invalid";
}

/**
 * Feeds `scan` the first bytes of a request's JSON body without taking them from the request:
 * `request.clone()` tees the body (natively, in workerd), the request keeps one branch and the peek
 * reads the other, then cancels it, so the request's body still holds every byte for the origin.
 * `complete` when the body's whole object was read within the bounds (a scan read as `JSON.parse`
 * reads, so a later duplicate key can no longer change it); otherwise what was seen so far, which
 * a later duplicate may replace. `undefined` when the body is not a JSON object.
 */
export async function peekScan<S extends BodyScan>(request: Request, scan: S, bounds: PeekBounds): Promise<{ complete: boolean; scan: S } | undefined> {
	if (request.body === null || request.bodyUsed) return undefined;
	const reader = request.clone().body?.getReader();
	if (reader === undefined) return undefined;
	const deadline = Date.now() + bounds.maxMs;
	let bytes = 0;
	try {
		while (bytes <= bounds.maxBytes) {
			const next = await within(reader.read(), Math.max(0, deadline - Date.now()));
			if (next === TIMED_OUT) break;
			if (next.done) {
				scan.end();
				break;
			}
			bytes += next.value.byteLength;
			scan.push(next.value);
			if (scan.state === "invalid") break;
		}
	} catch {
		// A body that broke off: what was seen is all there is.
	} finally {
		reader.cancel().catch(() => undefined);
	}
	if (scan.state === "invalid") return undefined;
	return { complete: scan.state === "complete", scan };
}

/** {@link peekScan} for some top-level `fields` of the body (the last of duplicate keys wins, escapes decoded). */
export function peekTopLevelFields(request: Request, fields: readonly string[], bounds: PeekBounds): Promise<{ complete: boolean; scan: FieldScan } | undefined> {
	return peekScan(request, scanTopLevelFields(fields), bounds);
}
