// Bench-only entry: the guard, unchanged, with a usage object that is "far away". Every RPC call the
// limiter client makes (admit in exact mode, lease in lease mode, settle in both) waits
// BENCH_USAGE_DELAY_MS (default 30) before the real object runs it, standing in for the round trip
// to a Durable Object in another location. The wait happens before the call's work, so the call
// itself stays as atomic as in the real object (it runs to its end without awaiting).
import { UsageObject as RealUsageObject } from "../../src/limits/usage-object/usage-object";

export { default } from "../../src/index";

/** @param {unknown} value */
function delayOf(value) {
	const ms = Number(value ?? 30);
	return Number.isFinite(ms) && ms >= 0 ? ms : 30;
}

/** @param {number} ms */
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The usage object, each of whose calls first waits the configured delay. */
export class UsageObject extends RealUsageObject {
	/** @param {Parameters<RealUsageObject["admit"]>[0]} request */
	async admit(request) {
		await wait(delayOf(this.env.BENCH_USAGE_DELAY_MS));
		return super.admit(request);
	}

	/** @param {Parameters<RealUsageObject["settle"]>[0]} request */
	async settle(request) {
		await wait(delayOf(this.env.BENCH_USAGE_DELAY_MS));
		return super.settle(request);
	}

	/** @param {Parameters<RealUsageObject["lease"]>[0]} request */
	async lease(request) {
		await wait(delayOf(this.env.BENCH_USAGE_DELAY_MS));
		return super.lease(request);
	}
}
