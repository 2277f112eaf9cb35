import type { ConsoleDownlink, ConsoleUplink } from "./console-link";
import { refusalReason } from "./console-link";
import type { Decision } from "../decisions";
import { type RevocationList, RevocationStore } from "../../keys/revocations";
import { DAY_MS, DAYS_KEPT, type HistoryEntry, type HistoryView, MINUTE_MS, minuteOf, UsageHistory } from "./usage-history";

/** At most this many minutes of tally are taken from one call (an isolate sends at most 60). */
const MAX_TALLY_ENTRIES = 120;
/** An isolate's minute this far ahead of the object's clock is not believed. */
const MAX_AHEAD_MS = 5 * MINUTE_MS;

/** What `consoleReport` answers: the organisation's history and revoked keys. */
export interface ObjectConsoleReport {
	readonly history: HistoryView;
	readonly revocations: RevocationList;
}

/**
 * The usage object's side of the operator console: its history and its revocation list, fed by the
 * console fields of the calls isolates already make (see `console-link.ts`).
 */
export class ObjectConsole {
	readonly history: UsageHistory;
	readonly revocations: RevocationStore;

	constructor(sql: SqlStorage) {
		this.history = new UsageHistory(sql);
		this.revocations = new RevocationStore(sql);
	}

	/** Records the tally an isolate sent with a call (minutes from 90 days back to 5 minutes ahead of `now`). */
	hear(request: unknown, now: number): void {
		const tally = uplinkOf(request)?.tally;
		if (!Array.isArray(tally)) return;
		for (const entry of tally.slice(0, MAX_TALLY_ENTRIES)) {
			if (typeof entry !== "object" || entry === null || !Number.isSafeInteger(entry.minute)) continue;
			if (entry.minute > now + MAX_AHEAD_MS || entry.minute < now - DAYS_KEPT * DAY_MS) continue;
			this.history.record(entry as HistoryEntry);
		}
	}

	/** Counts an admission the object decided itself (exact mode), in the minute of `now`. */
	decided(decision: Decision, now: number): void {
		const minute = minuteOf(now);
		if (decision.admitted) this.history.record({ minute, admitted: 1 });
		else this.history.record({ minute, refused: { [refusalReason(decision)]: 1 } });
	}

	/** Counts a refusal of a revoked key. */
	refusedRevoked(now: number): void {
		this.history.record({ minute: minuteOf(now), refused: { revoked_key: 1 } });
	}

	/** `answer`, with the revocation list added when the caller's copy is out of date (or `always`). */
	answer<T>(request: unknown, answer: T, now: number, always = false): T & { console?: ConsoleDownlink } {
		const revocations = always ? this.revocations.list(now) : this.revocations.news(uplinkOf(request)?.revocationsSeen, now);
		if (revocations === undefined || typeof answer !== "object" || answer === null) return answer as T & { console?: ConsoleDownlink };
		return { ...answer, console: { revocations } };
	}

	/** The history (`minutes` and `days` back from `now`) and the revocation list. */
	report(now: number, minutes: number, days: number): ObjectConsoleReport {
		return { history: this.history.read(now, minutes, days), revocations: this.revocations.list(now) };
	}

	/** Prunes history and revocations; answers when the next prune is due, or `undefined` when nothing is left. */
	prune(now: number): number | undefined {
		const due = [this.history.prune(now), this.revocations.prune(now)].filter((at): at is number => at !== undefined);
		return due.length === 0 ? undefined : Math.min(...due);
	}

	/** After the object's storage was deleted: the tables must be made again. */
	reset(): void {
		this.history.reset();
		this.revocations.reset();
	}
}

function uplinkOf(request: unknown): ConsoleUplink | undefined {
	if (typeof request !== "object" || request === null || !("console" in request)) return undefined;
	const uplink = (request as { console?: unknown }).console;
	return typeof uplink === "object" && uplink !== null ? (uplink as ConsoleUplink) : undefined;
}
