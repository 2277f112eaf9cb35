// Formatting: markdown tables, numbers, and BENCHMARKS.md's sections.
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const MIB = 1024 * 1024;

/**
 * A markdown table.
 * @param {string[]} header
 * @param {Array<Array<string | number>>} rows
 */
export function table(header, rows) {
	const line = (/** @type {Array<string | number>} */ cells) => `| ${cells.map(String).join(" | ")} |`;
	return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** @param {number[]} values */
export function median(values) {
	return quantile(values, 0.5);
}

/**
 * Nearest-rank quantile.
 * @param {number[]} values
 * @param {number} q
 */
export function quantile(values, q) {
	if (values.length === 0) return Number.NaN;
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** @param {number} bytes */
export function mib(bytes) {
	return `${(bytes / MIB).toFixed(1)} MiB`;
}

/** @param {number} bytes @param {number} ms */
export function mibPerSecond(bytes, ms) {
	return `${(bytes / MIB / (ms / 1000)).toFixed(0)} MiB/s`;
}

/** @param {boolean} met */
export function yesNo(met) {
	return met ? "yes" : "**no**";
}

/**
 * Replaces the section that starts with the `## heading` line (up to the next `## ` heading) in
 * `file`, or appends it; every other section is left as it was.
 * @param {string} file
 * @param {string} heading e.g. "## Body caps (issue 3)"
 * @param {string} body the section's text after its heading
 * @param {string} preamble the file's opening, used only when the file does not exist yet
 */
export function writeSection(file, heading, body, preamble) {
	const text = existsSync(file) ? readFileSync(file, "utf8") : preamble;
	const section = `${heading}\n\n${body.trim()}\n`;
	const lines = text.split("\n");
	const start = lines.findIndex((line) => line.trim() === heading);
	if (start === -1) {
		writeFileSync(file, `${text.trimEnd()}\n\n${section}`);
		return;
	}
	const after = lines.findIndex((line, index) => index > start && /^## /.test(line));
	const rest = after === -1 ? "" : `\n${lines.slice(after).join("\n")}`;
	writeFileSync(file, `${lines.slice(0, start).join("\n")}${start > 0 ? "\n" : ""}${section}${rest}`);
}
