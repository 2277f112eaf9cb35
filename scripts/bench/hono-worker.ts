// What a Worker author would pick instead of the guard: Hono's bodyLimit middleware with the same
// per-route caps (given by the bench as the CAPS binding, from wrangler.toml), then a forward.
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";

interface Env {
	ORIGIN: Fetcher;
	/** POST path -> cap in bytes. */
	CAPS: Record<string, number>;
}

const limits = new Map<number, MiddlewareHandler>();

function limitFor(cap: number): MiddlewareHandler {
	let limit = limits.get(cap);
	if (limit === undefined) {
		limit = bodyLimit({
			maxSize: cap,
			onError: (c) => c.json({ type: "error", error: { type: "request_too_large", message: `Request body over ${cap} bytes.` } }, 413),
		});
		limits.set(cap, limit);
	}
	return limit;
}

const limitByRoute: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
	const cap = c.env.CAPS[c.req.path];
	if (cap === undefined) return c.json({ type: "error", error: { type: "not_found_error", message: "No such route." } }, 404);
	return limitFor(cap)(c, next);
};

const app = new Hono<{ Bindings: Env }>();
app.post("*", limitByRoute, (c) => c.env.ORIGIN.fetch(c.req.raw));

export default app;
