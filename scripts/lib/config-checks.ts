// What `npm run check-config` runs: the Worker's own validation, loaded into Node.
export { parseGuardConfig } from "../../src/config/guard-config";
export { capsOverZoneLimit, parseZoneLimit } from "../../src/config/zone-plan";
export { parseTierConfig } from "../../src/limits/rates/tiers";
