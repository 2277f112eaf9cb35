// What `npm run keys` runs: the Worker's own key format and store, loaded into Node.
export { generateApiKey, hashApiKey, newKeyId } from "../../src/keys/api-key";
export { KeyStore } from "../../src/keys/key-store";
export { formatUsd } from "../../src/limits/spend/money";
export { parseTierConfig, resolveLimits } from "../../src/limits/rates/tiers";
