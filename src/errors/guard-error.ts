import { type ErrorType, errorTypeForStatus } from "./error-types";

/** Options for a {@link GuardError} beyond its status and message. */
export interface GuardErrorOptions {
	/** Overrides the type the SPEC's table gives the status. */
	type?: ErrorType;
	/** Extra response headers, for example `allow` on a 405 or `retry-after` on a 429. */
	headers?: Record<string, string>;
	/** What the log line records about the decision (never secrets). */
	detail?: Record<string, unknown>;
	cause?: unknown;
	/** Keeps the answer's connection open until this settles (see `errorResponse`). */
	holdOpenUntil?: Promise<unknown>;
}

/**
 * The one error class of the guard: thrown anywhere in the pipeline, turned into the SPEC's
 * envelope by the router's `catch` stage (see `errorResponse`).
 */
export class GuardError extends Error {
	readonly status: number;
	readonly type: ErrorType;
	readonly headers: Record<string, string>;
	readonly detail: Record<string, unknown> | undefined;
	readonly holdOpenUntil: Promise<unknown> | undefined;

	constructor(status: number, message: string, options: GuardErrorOptions = {}) {
		super(message, { cause: options.cause });
		this.name = "GuardError";
		this.status = status;
		this.type = options.type ?? errorTypeForStatus(status);
		this.headers = options.headers ?? {};
		this.detail = options.detail;
		this.holdOpenUntil = options.holdOpenUntil;
	}
}
