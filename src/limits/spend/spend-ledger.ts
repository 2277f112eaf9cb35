import { type BudgetHit, type BudgetScope, type Budgets, PERIODS, type Period, windowOf } from "./money";

/** Money to add to the spend of an organisation, and of the workspace and key named. */
export interface SpendCharge {
	readonly workspaceId?: string | undefined;
	readonly keyId?: string | undefined;
	readonly nanos: number;
}

/** One scope's spend in the current period, as `keys usage` shows it. */
export interface SpendLine {
	readonly scope: BudgetScope;
	readonly id?: string;
	readonly period: Period;
	/** The period's name: `2026-05-02` or `2026-05` (UTC). */
	readonly window: string;
	readonly spentNanos: number;
	/** The budget as of the last charge (0: none). */
	readonly budgetNanos: number;
	readonly resetAt: number;
}

interface Row {
	window: string;
	nanos: number;
	budget: number;
}

const NO_CLAIM = { nanos: 0, held: () => 0 };

/** At most this many spent budgets are listed for isolates to refuse locally. */
const MAX_EXHAUSTED = 1000;

/**
 * An organisation's spend, in its usage object's SQLite: one row per scope (the organisation, a
 * workspace, a key) and period (day, month), holding the current period's sum in nano-dollars. A
 * row of a period that has turned reads as nothing spent and is overwritten by the next charge.
 */
export class SpendLedger {
	readonly #rows = new Map<string, Row>();

	constructor(private readonly sql: SqlStorage) {}

	/** Creates the table if need be and reads every row. */
	load(): void {
		this.sql.exec(
			"CREATE TABLE IF NOT EXISTS spend (scope TEXT NOT NULL, period TEXT NOT NULL, window TEXT NOT NULL, nanos INTEGER NOT NULL, budget INTEGER NOT NULL, PRIMARY KEY (scope, period))",
		);
		for (const row of this.sql.exec<{ scope: string; period: string; window: string; nanos: number; budget: number }>("SELECT scope, period, window, nanos, budget FROM spend")) {
			this.#rows.set(`${row.scope}|${row.period}`, { window: row.window, nanos: row.nanos, budget: row.budget });
		}
	}

	/** Rows held (of any period). */
	get size(): number {
		return this.#rows.size;
	}

	/**
	 * The budget that refuses a request of this workspace and key, if any: one is spent when its
	 * period's spend has reached it, and a claim does not fit when the spend, the money other claims
	 * hold and the claim's own would pass it. Of several, the one that resets last.
	 */
	check(
		budgets: Budgets | undefined,
		workspaceId: string | undefined,
		keyId: string | undefined,
		now: number,
		claim: { readonly nanos: number; readonly held: (scopeKey: string) => number } = NO_CLAIM,
	): BudgetHit | undefined {
		if (budgets === undefined) return undefined;
		let worst: BudgetHit | undefined;
		for (const [scope, id] of scopesOf(workspaceId, keyId)) {
			const limits = budgets[scope];
			if (limits === undefined) continue;
			for (const period of PERIODS) {
				const limit = limits[period];
				if (limit === undefined) continue;
				const key = rowKey(scope, id);
				const spent = this.#spent(key, period, now);
				const held = claim.held(key);
				if (spent < limit && spent + held + claim.nanos <= limit) continue;
				const hit: BudgetHit = {
					scope,
					...(id === undefined ? {} : { id }),
					period,
					limitNanos: limit,
					spentNanos: spent,
					resetAt: windowOf(period, now).resetAt,
					...(spent < limit ? { heldNanos: held, claimNanos: claim.nanos } : {}),
				};
				if (worst === undefined || hit.resetAt > worst.resetAt) worst = hit;
			}
		}
		return worst;
	}

	/** Adds each charge to the organisation's spend, its workspace's and its key's, for every period. */
	add(charges: readonly SpendCharge[], budgets: Budgets | undefined, now: number): void {
		const sums = new Map<string, { scope: BudgetScope; nanos: number }>();
		for (const charge of charges) {
			if (charge.nanos <= 0) continue;
			for (const [scope, id] of scopesOf(charge.workspaceId, charge.keyId)) {
				const key = rowKey(scope, id);
				const sum = sums.get(key) ?? { scope, nanos: 0 };
				sum.nanos += charge.nanos;
				sums.set(key, sum);
			}
		}
		for (const [key, { scope, nanos }] of sums) {
			for (const period of PERIODS) {
				const window = windowOf(period, now).id;
				const row = this.#rows.get(`${key}|${period}`);
				const next = {
					window,
					nanos: Math.min(Number.MAX_SAFE_INTEGER, (row?.window === window ? row.nanos : 0) + nanos),
					budget: budgets?.[scope]?.[period] ?? 0,
				};
				this.#rows.set(`${key}|${period}`, next);
				this.sql.exec(
					"INSERT INTO spend (scope, period, window, nanos, budget) VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, period) DO UPDATE SET window = excluded.window, nanos = excluded.nanos, budget = excluded.budget",
					key,
					period,
					next.window,
					next.nanos,
					next.budget,
				);
			}
		}
	}

	/**
	 * Every budget of the organisation spent now: the organisation's and keys' against `budgets` (the
	 * tier's, the same for every key), a workspace's against its own when it is `workspaceId`, else
	 * against the budget its last charge carried.
	 */
	exhausted(budgets: Budgets | undefined, workspaceId: string | undefined, now: number): BudgetHit[] {
		const hits: BudgetHit[] = [];
		for (const line of this.report(now)) {
			const current =
				line.scope === "workspace" && line.id !== workspaceId ? line.budgetNanos : (budgets?.[line.scope]?.[line.period] ?? 0);
			if (current <= 0 || line.spentNanos < current) continue;
			hits.push({ scope: line.scope, ...(line.id === undefined ? {} : { id: line.id }), period: line.period, limitNanos: current, spentNanos: line.spentNanos, resetAt: line.resetAt });
			if (hits.length === MAX_EXHAUSTED) break;
		}
		return hits;
	}

	/** Every scope's spend in the current periods. */
	report(now: number): SpendLine[] {
		const lines: SpendLine[] = [];
		for (const [key, row] of this.#rows) {
			const split = key.lastIndexOf("|");
			const period = key.slice(split + 1) as Period;
			const { id: window, resetAt } = windowOf(period, now);
			if (row.window !== window) continue;
			const [scope, id] = parseRowKey(key.slice(0, split));
			lines.push({ scope, ...(id === undefined ? {} : { id }), period, window, spentNanos: row.nanos, budgetNanos: row.budget, resetAt });
		}
		return lines;
	}

	/** Deletes the rows of periods that have turned; answers when the next current one turns (or undefined). */
	prune(now: number): number | undefined {
		let next: number | undefined;
		for (const [key, row] of [...this.#rows]) {
			const split = key.lastIndexOf("|");
			const period = key.slice(split + 1) as Period;
			const { id: window, resetAt } = windowOf(period, now);
			if (row.window === window) {
				next = next === undefined ? resetAt : Math.min(next, resetAt);
				continue;
			}
			this.#rows.delete(key);
			this.sql.exec("DELETE FROM spend WHERE scope = ? AND period = ?", key.slice(0, split), period);
		}
		return next;
	}

	/** Forgets the rows held in memory (after the storage was deleted). */
	clear(): void {
		this.#rows.clear();
	}

	#spent(key: string, period: Period, now: number): number {
		const row = this.#rows.get(`${key}|${period}`);
		return row !== undefined && row.window === windowOf(period, now).id ? row.nanos : 0;
	}
}

/** The scopes a request's spend counts in: its organisation, its workspace and its key. */
function scopesOf(workspaceId: string | undefined, keyId: string | undefined): [BudgetScope, string | undefined][] {
	const scopes: [BudgetScope, string | undefined][] = [["organization", undefined]];
	if (workspaceId !== undefined) scopes.push(["workspace", workspaceId]);
	if (keyId !== undefined) scopes.push(["key", keyId]);
	return scopes;
}

function rowKey(scope: BudgetScope, id: string | undefined): string {
	return scope === "organization" ? "org" : `${scope === "workspace" ? "ws" : "key"}:${id ?? ""}`;
}

function parseRowKey(key: string): [BudgetScope, string | undefined] {
	if (key === "org") return ["organization", undefined];
	const colon = key.indexOf(":");
	return [key.slice(0, colon) === "ws" ? "workspace" : "key", key.slice(colon + 1)];
}
