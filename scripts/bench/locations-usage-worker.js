// Bench-only entry for `npm run bench -- locations`: the guard's own usage object, "far away". It
// defines the `UsageObject` class every guard isolate of one distance binds (by `scriptName`): a
// Durable Object holding one real `UsageObject`, with every RPC method the real class has (found on
// its prototype chain, so a method added later is delayed too) passed on after waiting
// BENCH_USAGE_DELAY_MS (0: no wait at all), standing in for the round trip to a Durable Object in
// another location. The wait comes before the real method
// runs, so the call itself stays as atomic as in the real object. The class is taken from the
// guard's entry (which must export it for wrangler), not from its file, so moving it inside src/
// does not break the bench.
//
// `GET /__bench/wrapped` on this Worker answers the names of the wrapped methods (the bench prints
// them); any other request goes to the guard unchanged (this Worker serves no traffic in the bench).
import { DurableObject } from "cloudflare:workers";
import guard, { UsageObject as RealUsageObject } from "../../src/index";

/** Durable Object lifecycle handlers: called by the runtime, not over RPC, so never delayed. */
const LIFECYCLE = new Set(["constructor", "fetch", "alarm", "webSocketMessage", "webSocketClose", "webSocketError"]);

/** @param {unknown} value */
function delayOf(value) {
	const ms = Number(value ?? 0);
	return Number.isFinite(ms) && ms >= 0 ? ms : 0;
}

/** @param {number} ms */
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The public methods of `prototype` and its ancestors below the runtime's DurableObject (or
 * Object), nearest definition first.
 * @param {object} prototype
 */
function rpcMethods(prototype) {
	/** @type {Map<string, Function>} */
	const found = new Map();
	for (let at = prototype; at && at !== DurableObject.prototype && at !== Object.prototype; at = Object.getPrototypeOf(at)) {
		for (const name of Object.getOwnPropertyNames(at)) {
			if (LIFECYCLE.has(name) || found.has(name)) continue;
			const descriptor = Object.getOwnPropertyDescriptor(at, name);
			if (descriptor && typeof descriptor.value === "function") found.set(name, descriptor.value);
		}
	}
	return found;
}

const METHODS = rpcMethods(RealUsageObject.prototype);
/** Each wrapper's real object; not a property, so nothing of it is reachable over RPC. */
const REAL = new WeakMap();
const HANDLERS = [...LIFECYCLE].filter((name) => name !== "constructor" && typeof RealUsageObject.prototype[name] === "function");

/**
 * The usage object, each of whose RPC methods first waits the configured delay. It holds the real
 * object rather than extending it: the real methods call one another (`consoleReport` calls
 * `report`), and those calls must stay the real, undelayed, synchronous ones.
 */
export class UsageObject extends DurableObject {
	/** @param {DurableObjectState} ctx @param {any} env */
	constructor(ctx, env) {
		super(ctx, env);
		REAL.set(this, new RealUsageObject(ctx, env));
	}
}

for (const name of METHODS.keys()) {
	Object.defineProperty(UsageObject.prototype, name, {
		configurable: true,
		writable: true,
		/** @param {unknown[]} args */
		value: async function delayed(...args) {
			// `this.env` is the DurableObject base class's copy of the defining Worker's bindings.
			const ms = delayOf(/** @type {{ env?: Record<string, unknown> }} */ (this).env?.BENCH_USAGE_DELAY_MS);
			if (ms > 0) await wait(ms);
			const real = REAL.get(this);
			return real[name](...args);
		},
	});
}
// The runtime's own calls (an alarm, a WebSocket event, fetch) reach the real object at once.
for (const name of HANDLERS) {
	Object.defineProperty(UsageObject.prototype, name, {
		configurable: true,
		writable: true,
		/** @param {unknown[]} args */
		value: function handler(...args) {
			const real = REAL.get(this);
			return real[name](...args);
		},
	});
}

export default {
	/**
	 * @param {Request} request
	 * @param {any} env
	 * @param {ExecutionContext} ctx
	 */
	fetch(request, env, ctx) {
		if (new URL(request.url).pathname === "/__bench/wrapped") {
			return Response.json({ wrapped: [...METHODS.keys()].sort(), delayMs: delayOf(env.BENCH_USAGE_DELAY_MS) });
		}
		return guard.fetch(request, env, ctx);
	},
};
