/** What the pipeline knows of one request; what its log line reports. */
export interface RequestState {
	readonly requestId: string;
	readonly startedAt: number;
	/** The request's URL, parsed once. */
	readonly url: URL;
	/** The matched route's name. */
	route?: string;
	/** The origin the request went to (its base URL, never credentials, or the binding's name). */
	origin?: string;
	/** The organisation and key ID of an admitted key (never the key). */
	orgId?: string;
	keyId?: string;
	/** The `error.type` the client was answered with, if any. */
	errorType?: string;
	/** Headers every response to this request carries (rate-limit headers, CORS). */
	readonly responseHeaders: Record<string, string>;
	/** The decisions taken, by concern (`cap`, `config`, ...), with their numbers. */
	readonly decisions: Record<string, unknown>;
	/** Whether the body was teed to be read before forwarding: a tee's branch cannot be piped natively into another stream. */
	bodyTeed?: boolean;
	/** Request body bytes read so far (the counting pump's count, or the trusted length). */
	bytesIn?: () => number;
	/** Milliseconds from the request's arrival to the origin's response headers. */
	originMs?: number;
	/** For a proxied body: settles when the client has taken it all (or left), with the bytes sent if known. */
	bodyEnded?: Promise<number | undefined>;
	/** For an answer that ended before it was handed on (read whole, or refused): the bytes sent, if known. */
	answered?: { readonly bytesOut: number | undefined };
	/** The answer as the answer stage built it, with every header the guard sets: the last stages only log it. */
	stamped?: Response;
}
