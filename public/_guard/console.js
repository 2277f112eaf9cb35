// The edge-guard operator console: reads the admin API (/_guard/api/) with the token kept in this
// tab's sessionStorage and draws each organisation's last hour with uPlot (vendor/, bundled; no
// CDN). Every value shown comes from the API as it answered; nothing is computed here but sums.

const API = "/_guard/api";
const TOKEN_KEY = "edge-guard-admin-token";
const REFRESH_MS = 10_000;
const HISTORY_MINUTES = 60;
const COLORS = {
	admitted: "#2f7d4a",
	refused: ["#c0392b", "#e67e22", "#8e44ad", "#d35400", "#7f8c8d", "#b03a2e", "#af7ac5"],
	tokens: { input: "#2e86c1", cache_read: "#17a589", cache_write: "#f1c40f", output: "#884ea0" },
};

/** What the page drew, for people debugging it and for the browser test. */
const drawn = { charts: new Map(), orgs: [], keys: [], health: null, refreshedAt: null };
/** When a key's status was last changed from this page (a refresh begun before it draws keys no more). */
let keysChangedAt = 0;
globalThis.edgeGuardConsole = drawn;

const $ = (id) => document.getElementById(id);
let timer;

function token() {
	return sessionStorage.getItem(TOKEN_KEY);
}

/** One admin API call; a refused token logs out. */
async function api(path, init = {}) {
	const headers = { authorization: `Bearer ${token()}` };
	if (init.body !== undefined) headers["content-type"] = "application/json";
	const response = await fetch(`${API}${path}`, { ...init, headers, cache: "no-store" });
	const body = await response.json().catch(() => null);
	if (response.status === 401) {
		logout("The admin token was refused.");
		throw new Error("unauthorised");
	}
	if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
	return body;
}

function el(tag, attributes = {}, ...children) {
	const node = document.createElement(tag);
	for (const [name, value] of Object.entries(attributes)) {
		if (name === "text") node.textContent = value;
		else node.setAttribute(name, value);
	}
	for (const child of children) if (child !== null && child !== undefined) node.append(child);
	return node;
}

function usd(value) {
	return `$${value.toFixed(value !== 0 && Math.abs(value) < 0.01 ? 6 : 2)}`;
}

function meter(fraction, low) {
	const bar = el("span");
	bar.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
	return el("span", { class: low ? "meter low" : "meter" }, bar);
}

function sum(values) {
	return values.reduce((total, value) => total + value, 0);
}

function renderHealth(health) {
	const box = $("breakers");
	box.replaceChildren();
	for (const breaker of health.isolate.breakers) {
		// Each origin's recent failure rate (its breaker's window), when the health view gives it.
		const rate = breaker.recent?.failure_rate;
		const recent = breaker.recent === undefined ? "" : `, ${rate === null ? "no" : `${Math.round(rate * 100)}% of ${breaker.recent.requests}`} recent failures`;
		box.append(el("span", { class: `breaker state-${breaker.state}`, "data-origin": breaker.origin, text: `breaker ${breaker.origin}: ${breaker.state}${recent}` }));
	}
	const flight = health.isolate.in_flight;
	box.append(el("span", { class: "breaker", text: `in flight: ${flight.total} of ${flight.max_in_flight}` }));
}

/** Requests per minute as stacked bars: admitted at the bottom, then each refusal reason. */
function requestsChart(org, width) {
	const m = org.history.minutes;
	const xs = m.admitted.map((_, i) => Date.parse(m.start) / 1000 + i * m.step_seconds);
	const reasons = Object.keys(m.refused).sort();
	const layers = [{ label: "admitted", values: m.admitted, color: COLORS.admitted }];
	for (const [i, reason] of reasons.entries()) {
		layers.push({ label: `refused: ${reason}`, values: m.refused[reason], color: COLORS.refused[i % COLORS.refused.length] });
	}
	let running = xs.map(() => 0);
	const stacked = layers.map((layer) => {
		running = running.map((total, i) => total + layer.values[i]);
		return running;
	});
	// Drawn tallest first, so each lower layer covers the bottom of the one above: stacked bars.
	const order = layers.map((_, i) => i).reverse();
	const bars = uPlot.paths.bars({ size: [0.8, 24] });
	const options = {
		width,
		height: 170,
		legend: { live: true },
		scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
		series: [
			{},
			...order.map((i) => ({
				label: layers[i].label,
				stroke: layers[i].color,
				fill: layers[i].color,
				paths: bars,
				points: { show: false },
				// The legend shows each layer's own count, not the running total it is drawn at.
				value: (_u, _v, _s, idx) => (idx === null ? "--" : String(layers[i].values[idx])),
			})),
		],
		axes: [{}, { size: 40 }],
	};
	return { options, data: [xs, ...order.map((i) => stacked[i])], layers };
}

function tokensChart(org, width) {
	const m = org.history.minutes;
	const xs = m.admitted.map((_, i) => Date.parse(m.start) / 1000 + i * m.step_seconds);
	const lines = [
		{ label: "input", values: m.input_tokens, color: COLORS.tokens.input },
		{ label: "cache read", values: m.cache_read_input_tokens, color: COLORS.tokens.cache_read },
		{ label: "cache write", values: m.cache_creation_input_tokens, color: COLORS.tokens.cache_write },
		{ label: "output", values: m.output_tokens, color: COLORS.tokens.output },
	];
	const options = {
		width,
		height: 150,
		scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
		series: [{}, ...lines.map((line) => ({ label: line.label, stroke: line.color, width: 2, points: { show: false } }))],
		axes: [{}, { size: 50 }],
	};
	return { options, data: [xs, ...lines.map((line) => line.values)], lines };
}

/** Draws (or redraws) a chart in `box`, remembering what it drew. */
function plot(orgId, kind, box, built) {
	const key = `${orgId}|${kind}`;
	const known = drawn.charts.get(key);
	const sameShape = known && known.labels.join("|") === built.options.series.map((series) => series.label ?? "").join("|");
	if (known && sameShape && known.box === box) {
		known.plot.setData(built.data);
	} else {
		known?.plot.destroy();
		box.replaceChildren();
		drawn.charts.set(key, { plot: new uPlot(built.options, built.data, box), box, labels: built.options.series.map((series) => series.label ?? "") });
	}
	drawn.charts.get(key).source = built;
}

function renderOrg(org, boxes) {
	let card = boxes.get(org.id);
	if (card === undefined) {
		card = {
			root: el("article", { class: "org", "data-org": org.id }),
			facts: el("dl", { class: "facts" }),
			limits: el("table", { class: "limits" }),
			requests: el("div", { class: "plot plot-requests" }),
			tokens: el("div", { class: "plot plot-tokens" }),
			title: el("h3"),
		};
		card.root.append(
			card.title,
			card.facts,
			card.limits,
			el("div", { class: "chart" }, el("h4", { text: "Requests per minute (admitted and refused, by reason)" }), card.requests),
			el("div", { class: "chart" }, el("h4", { text: "Tokens per minute" }), card.tokens),
		);
		boxes.set(org.id, card);
	}
	card.title.replaceChildren(org.id, " ", el("span", { class: "tier", text: org.tier === null ? "" : `tier ${org.tier}` }));
	const m = org.history.minutes;
	const refused = sum(Object.values(m.refused).map(sum));
	const facts = [
		["keys", `${org.keys.active} active, ${org.keys.disabled} disabled`],
		["last hour", `${sum(m.admitted)} admitted, ${refused} refused`],
		["last refusal", org.last_refusal === null ? "none" : `${org.last_refusal.request_id} (${org.last_refusal.reason}, ${new Date(org.last_refusal.at).toLocaleTimeString()})`],
	];
	for (const spend of org.spend) {
		const label = spend.period === "day" ? "spend today" : "spend this month";
		if (spend.budget_usd === null) facts.push([label, `${usd(spend.spent_usd)} (no budget)`]);
		else {
			const used = spend.spent_usd / spend.budget_usd;
			facts.push([label, el("span", {}, meter(used, used >= 0.9), `${usd(spend.spent_usd)} of ${usd(spend.budget_usd)} budget`)]);
		}
	}
	if (org.revoked_keys.length > 0) facts.push(["revoked (fast path)", org.revoked_keys.join(", ")]);
	card.facts.replaceChildren(...facts.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { "data-fact": name }, value)]));
	card.limits.replaceChildren(
		el("thead", {}, el("tr", {}, el("th", { text: "pool" }), el("th", { text: "limit" }), el("th", { text: "headroom now" }))),
		el(
			"tbody",
			{},
			...org.limits.map((limit) =>
				el(
					"tr",
					{ "data-limit": `${limit.pool}.${limit.limit}` },
					el("td", { text: limit.pool }),
					el("td", { text: `${limit.limit.replace("_", " ")} per minute` }),
					el("td", {}, meter(limit.remaining / limit.per_minute, limit.remaining / limit.per_minute < 0.1), `${limit.remaining} of ${limit.per_minute}`),
				),
			),
		),
	);
	return card;
}

const cards = new Map();

function renderOrgs(orgs) {
	const list = $("org-list");
	if (orgs.length === 0) {
		list.replaceChildren(el("p", { text: "No organisation has a key or a tier of its own yet." }));
		return;
	}
	const roots = [];
	for (const org of orgs) {
		const card = renderOrg(org, cards);
		roots.push(card.root);
	}
	list.replaceChildren(...roots);
	for (const org of orgs) {
		const card = cards.get(org.id);
		// The card's own width, once it is laid out (two columns on a wide screen, one on a narrow).
		const width = Math.max(280, card.requests.clientWidth);
		plot(org.id, "requests", card.requests, requestsChart(org, width));
		plot(org.id, "tokens", card.tokens, tokensChart(org, width));
	}
}

function renderKeys(keys) {
	const body = $("key-table").tBodies[0];
	body.replaceChildren(
		...keys.map((key) => {
			const next = key.status === "active" ? "disabled" : "active";
			const button = el("button", {
				type: "button",
				class: next === "disabled" ? "danger" : "",
				"data-key-id": key.id,
				"data-action": next === "disabled" ? "disable" : "enable",
				text: next === "disabled" ? "Disable" : "Enable",
			});
			button.addEventListener("click", () => setStatus(key.id, next, button));
			return el(
				"tr",
				{ "data-key-id": key.id },
				el("td", {}, el("code", { text: key.id })),
				el("td", { text: key.org_id }),
				el("td", { text: key.name }),
				el("td", { text: key.scopes.join(", ") }),
				el("td", { class: `status-${key.status}`, text: key.status }),
				el("td", { text: key.created_at.slice(0, 19).replace("T", " ") }),
				el("td", {}, button),
			);
		}),
	);
}

async function setStatus(id, status, button) {
	button.disabled = true;
	try {
		await api(`/keys/${encodeURIComponent(id)}`, { method: "PATCH", body: JSON.stringify({ status }) });
		// Shown as soon as the API has it: a refresh of many organisations can take seconds, and one
		// that fetched the keys before this change must not draw them back as they were.
		keysChangedAt = Date.now();
		drawn.keys = drawn.keys.map((key) => (key.id === id ? { ...key, status } : key));
		renderKeys(drawn.keys);
		await refresh();
	} catch (error) {
		$("status").textContent = `Could not change ${id}: ${error.message}`;
		button.disabled = false;
	}
}

async function refresh() {
	if (!token()) return;
	const startedAt = Date.now();
	try {
		const [health, list, keys] = await Promise.all([api("/health"), api("/orgs"), api("/keys")]);
		const orgs = await Promise.all(list.orgs.map((org) => api(`/orgs/${encodeURIComponent(org.id)}?minutes=${HISTORY_MINUTES}&days=1`).then((answer) => answer.org)));
		showConsole();
		drawn.health = health;
		drawn.orgs = orgs;
		renderHealth(health);
		renderOrgs(orgs);
		if (startedAt >= keysChangedAt) {
			drawn.keys = keys.keys;
			renderKeys(keys.keys);
		}
		drawn.refreshedAt = new Date().toISOString();
		$("status").textContent = `updated ${new Date().toLocaleTimeString()}${list.truncated ? " (first 200 organisations)" : ""}`;
		document.body.dataset.refreshed = drawn.refreshedAt;
	} catch (error) {
		if (error.message !== "unauthorised") $("status").textContent = `Refresh failed: ${error.message}`;
	}
}

function showConsole() {
	$("login").hidden = true;
	$("console").hidden = false;
	$("logout").hidden = false;
	$("refresh").hidden = false;
}

function logout(message = "") {
	sessionStorage.removeItem(TOKEN_KEY);
	clearInterval(timer);
	$("console").hidden = true;
	$("logout").hidden = true;
	$("refresh").hidden = true;
	$("login").hidden = false;
	$("login-error").textContent = message;
	$("status").textContent = "";
}

function start() {
	clearInterval(timer);
	timer = setInterval(refresh, REFRESH_MS);
	return refresh();
}

$("login").addEventListener("submit", (event) => {
	event.preventDefault();
	const value = $("token").value.trim();
	$("token").value = "";
	if (value === "") return;
	sessionStorage.setItem(TOKEN_KEY, value);
	$("login-error").textContent = "";
	start();
});
$("logout").addEventListener("click", () => logout());
$("refresh").addEventListener("click", () => refresh());
if (token()) start();
