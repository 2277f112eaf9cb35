// The guard with `console.log` made a no-op, for the peers bench: beside the guard as it is, it
// shows what workerd's local printing of the request log line costs (the object formatted by
// node:util's inspect and written to stdout). Deployed, Workers Logs takes the same object as the
// runtime hands it on; that cost is not measured here. Bench only: never deployed.
import guard from "../../src/index";

export { UsageObject } from "../../src/index";

console.log = () => undefined;

export default guard;
