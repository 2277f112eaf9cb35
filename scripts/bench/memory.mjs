// Memory of a workerd process, from Linux's /proc: current RSS and its high-water mark.
import { readFileSync } from "node:fs";

/**
 * The process's resident set size and its peak so far, in bytes.
 * @param {number} pid
 */
export function readMemory(pid) {
	const status = readFileSync(`/proc/${pid}/status`, "utf8");
	return { rss: field(status, "VmRSS"), peak: field(status, "VmHWM") };
}

/**
 * @param {string} status
 * @param {string} name
 */
function field(status, name) {
	const match = status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"));
	if (!match) throw new Error(`/proc status has no ${name}`);
	return Number(match[1]) * 1024;
}

/**
 * Samples the process's RSS every `everyMs` until stopped, keeping the maximum, and calls `onOver`
 * once if it passes `limit` bytes (so a ballooning run can be cut short).
 * @param {number} pid
 * @param {{ everyMs: number, limit: number, onOver: (rss: number) => void }} options
 * @returns {{ stop: () => number }} `stop` returns the largest RSS seen, in bytes
 */
export function sampleRss(pid, { everyMs, limit, onOver }) {
	let max = 0;
	let warned = false;
	const timer = setInterval(() => {
		let rss;
		try {
			rss = readMemory(pid).rss;
		} catch {
			return; // the process is gone; the caller sees the failed upload
		}
		max = Math.max(max, rss);
		if (rss > limit && !warned) {
			warned = true;
			onOver(rss);
		}
	}, everyMs);
	return {
		stop: () => {
			clearInterval(timer);
			return max;
		},
	};
}
