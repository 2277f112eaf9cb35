import type { IRequest } from "itty-router";
import { newRequestId } from "../request-id/request-id";

/** What the pipeline knows of one request; what its log line reports. */
export interface RequestState {
	readonly requestId: string;
	readonly startedAt: number;
	/** The matched route's name. */
	route?: string;
	/** The origin the request went to. */
	origin?: string;
	/** The organisation and key ID of an admitted key (never the key). */
	orgId?: string;
	keyId?: string;
	/** The `error.type` the client was answered with, if any. */
	errorType?: string;
	/** Headers every response to this request carries (the rate-limit headers of its organisation). */
	readonly responseHeaders: Record<string, string>;
	/** The decisions taken, by concern (`cap`, `config`, ...), with their numbers. */
	readonly decisions: Record<string, unknown>;
	/** Request body bytes read so far (the counting pump's count). */
	bytesIn?: () => number;
	/** Milliseconds from the request's arrival to the origin's response headers. */
	originMs?: number;
	/** For a proxied body: settles when the client has taken it all (or left), with the bytes sent if known. */
	bodyEnded?: Promise<number | undefined>;
}

/** A request as the pipeline's stages see it: itty-router's request plus the guard's state. */
export type GuardRequest = IRequest & { guard: RequestState };

/** The pipeline's first stage: gives the request its ID and state. */
export function withRequestState(request: IRequest): void {
	(request as GuardRequest).guard = { requestId: newRequestId(), startedAt: Date.now(), decisions: {}, responseHeaders: {} };
}
