import fc from "fast-check";
import { beforeEach, inject } from "vitest";

declare module "vitest" {
	export interface ProvidedContext {
		/** `FC_SEED` from the environment of `vitest run` (vitest.config.ts provides it), or "". */
		fcSeed: string;
	}
}

/**
 * Gives this file's property tests one seed per run: `FC_SEED` when set (to reproduce a failure),
 * otherwise a random one, so every run explores new inputs. fast-check's failure report names the
 * seed and the counterexample's path; a failed test also prints the command that replays it:
 * `FC_SEED=<seed> npx vitest run <file>`. (The workers pool does not pass environment variables
 * to tests, so the seed travels through vitest's `provide`/`inject`.)
 */
export function seedPerRun(file: string): number {
	const given = inject("fcSeed");
	const seed = given === "" || given === undefined ? Math.floor(Math.random() * 0x7fffffff) : Number(given);
	if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(given)}`);
	fc.configureGlobal({ seed });
	beforeEach(({ onTestFailed }) => {
		onTestFailed(() => console.error(`property seed ${seed}: reproduce with FC_SEED=${seed} npx vitest run ${file}`));
	});
	return seed;
}
