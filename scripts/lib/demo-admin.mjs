// The operator console's admin token that `npm start` seeds, like the demo keys: local only. No
// deployed configuration or bundle may hold it; `npm run deploy:check` fails one that does.

/** The local stack's ADMIN_TOKEN, unless the run sets its own (`--var` or .dev.vars). */
export const DEMO_ADMIN_TOKEN = "demo-admin-token";
