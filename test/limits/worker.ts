// The Worker the limits tests run against: only the usage object (runInDurableObject needs its
// class exported by the `main` Worker).
export { UsageObject } from "../../src/limits/usage-object/usage-object";

export default {
	fetch(): Response {
		return new Response("limits test worker", { status: 404 });
	},
} satisfies ExportedHandler;
