import type { IRequest } from "itty-router";
import type { RequestState } from "../lib/request-state";
import { newRequestId } from "../request-id/request-id";

export type { RequestState } from "../lib/request-state";

/** A request as the pipeline's stages see it: itty-router's request plus the guard's state. */
export type GuardRequest = IRequest & { guard: RequestState };

/** The pipeline's first stage: gives the request its ID and state. */
export function withRequestState(request: IRequest): void {
	(request as GuardRequest).guard = { requestId: newRequestId(), startedAt: Date.now(), url: new URL(request.url), decisions: {}, responseHeaders: {} };
}
