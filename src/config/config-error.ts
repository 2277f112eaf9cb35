/**
 * A configuration problem, naming the field at fault (`ROUTES[3].max_body_bytes`). The guard
 * answers every request with `500 api_error` carrying this message until the table is fixed, and
 * `npm run check-config` exits non-zero with the same message.
 */
export class ConfigError extends Error {
	readonly field: string;

	constructor(field: string, problem: string) {
		super(`${field}: ${problem}`);
		this.name = "ConfigError";
		this.field = field;
	}
}
