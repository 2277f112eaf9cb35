/**
 * The `spend` table as a usage object's SQLite holds it, in memory, for the spend ledger's tests in
 * Node: it answers the four statements the ledger issues (create, read every row, upsert by scope
 * and period, delete by scope and period) and refuses any other, so a changed statement fails the
 * tests instead of passing unread.
 */
export interface SpendRow {
	scope: string;
	period: string;
	window: string;
	nanos: number;
	budget: number;
}

/** A stand-in for `ctx.storage.sql` holding only the `spend` table; `rows` is what is stored. */
export class SpendStorage {
	readonly rows = new Map<string, SpendRow>();

	exec(query: string, ...bindings: unknown[]): Iterable<SpendRow> {
		const statement = query.replace(/\s+/g, " ").trim();
		if (statement.startsWith("CREATE TABLE IF NOT EXISTS spend ")) return [];
		if (statement === "SELECT scope, period, window, nanos, budget FROM spend") return [...this.rows.values()].map((row) => ({ ...row }));
		if (statement.startsWith("INSERT INTO spend (scope, period, window, nanos, budget) VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, period) DO UPDATE")) {
			const [scope, period, window, nanos, budget] = bindings as [string, string, string, number, number];
			this.rows.set(`${scope}|${period}`, { scope, period, window, nanos, budget });
			return [];
		}
		if (statement === "DELETE FROM spend WHERE scope = ? AND period = ?") {
			this.rows.delete(`${bindings[0]}|${bindings[1]}`);
			return [];
		}
		throw new Error(`unexpected statement: ${statement}`);
	}

	/** Typed as the runtime's storage, which the ledger takes. */
	get sql(): SqlStorage {
		return this as unknown as SqlStorage;
	}
}
