// The dashboard: signs in, loads the node's state, keeps it live from the event stream, renders views.

import { AuthFailed, get, openEventStream, redeemLoginCode, session } from "./api.js";
import { closeChannel, createRequest, deposit, openChannel, withdraw } from "./actions.js";
import { barChart, historyChart, latencyPoints, lineChart, paymentsPerSecond } from "./charts.js";
import { countdown, el, formatEth, formatExact, short, time } from "./format.js";

const $ = (id) => document.getElementById(id);
const PAYMENT_KINDS = new Set(["payment_sent", "payment_received"]);
const SHOWN_PAYMENTS = 200;

const state = {
  scope: "read", info: null, health: null, summary: null, channels: [], towers: [], payments: new Map(),
  selected: null, stream: null, timers: [], refreshing: null,
};
const isAdmin = () => state.scope === "admin";

// --- signing in ------------------------------------------------------------------------------------

function showLogin(message) {
  for (const timer of state.timers) clearInterval(timer);
  state.timers = [];
  if (state.stream) state.stream.stop();
  state.stream = null;
  $("shell").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-token").focus();
}

async function signIn() {
  const code = new URLSearchParams(location.hash.slice(1)).get("login");
  if (code) {
    history.replaceState(null, "", location.pathname);  // the code is spent; keep it out of history
    try {
      session.token = (await redeemLoginCode(code)).token;
    } catch (problem) {
      session.token = null;
      showLogin(problem.message);
      return;
    }
  }
  if (!session.token) { showLogin(""); return; }
  try {
    state.scope = (await get("/dashboard/whoami")).scope;
  } catch (problem) {
    session.token = null;
    showLogin(problem instanceof AuthFailed ? `Signed out: ${problem.message}` : problem.message);
    return;
  }
  await start();
}

function guarded(fn) {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (problem) {
      if (problem instanceof AuthFailed) { session.token = null; showLogin(`Signed out: ${problem.message}`); }
      else toast(problem.message);
    }
  };
}

// --- loading ---------------------------------------------------------------------------------------

async function start() {
  $("login").hidden = true;
  $("shell").hidden = false;
  $("scope").textContent = `${state.scope} access`;
  for (const node of document.querySelectorAll(".admin-only")) node.hidden = !isAdmin();
  await refresh();
  const listed = await get("/payments?limit=1000");
  for (const payment of listed) addPayment(payment, false);
  renderPayments();
  state.stream = openEventStream(state.summary.event_seq, {
    onEvent: onEvent,
    onState: (live) => { $("live").textContent = live ? "live" : "reconnecting"; $("live").classList.toggle("on", live); },
    onAuthFailed: (reason) => { session.token = null; showLogin(`Signed out: ${reason}`); },
  });
  state.timers.push(setInterval(guarded(refreshStatus), 5000), setInterval(tick, 1000));
}

const refresh = guarded(async () => {
  const [info, health, summary, channels, towers] = await Promise.all([
    get("/info"), get("/health"), get("/dashboard/summary"), get("/channels"), get("/watchtowers")]);
  Object.assign(state, { info, health, summary, channels, towers });
  renderAll();
});

async function refreshStatus() {
  const [health, summary, towers] = await Promise.all([get("/health"), get("/dashboard/summary"), get("/watchtowers")]);
  Object.assign(state, { health, summary, towers });
  renderOverview();
  renderTowers();
  renderCharts();
}

// Events come in bursts (a payment is several); one refresh covers a burst.
function refreshSoon() {
  if (state.refreshing) return;
  state.refreshing = setTimeout(async () => {
    state.refreshing = null;
    await refresh();
    if (state.selected) await showChannel(state.selected, false);
  }, 250);
}

function onEvent(event) {
  if (PAYMENT_KINDS.has(event.kind)) {
    addPayment({ kind: event.kind, at_ms: Math.round(event.at * 1000), amount: event.amount,
      payment_id: event.payment_id, channel_id: event.channel_id }, true);
    renderPayments();
  }
  refreshSoon();
}

function addPayment(payment, fresh) {
  const key = `${payment.kind}:${payment.channel_id}:${payment.payment_id}`;
  if (!state.payments.has(key)) state.payments.set(key, { ...payment, fresh });
}

// --- rendering -------------------------------------------------------------------------------------

function renderAll() {
  renderOverview();
  renderChannels();
  renderTowers();
  renderCharts();
}

function copyButton(text, what) {
  return el("button", { class: "quiet small", type: "button", "aria-label": `copy ${what}`,
    onclick: () => copy(text, what) }, "Copy");
}

async function copy(text, what) {
  try { await navigator.clipboard.writeText(text); toast(`${what} copied`); }
  catch { toast(`could not copy; ${what}: ${text}`); }
}

function stat(label, value, sub, extra) {
  return el("dl", { class: "stat" }, el("dt", {}, label),
    el("dd", {}, value, extra ? [" ", extra] : null), sub ? el("dd", { class: "sub" }, sub) : null);
}

function openChannels() { return state.channels.filter((c) => c.status === "open"); }

function renderOverview() {
  const { info, health, summary } = state;
  if (!info || !health || !summary) return;
  const open = openChannels();
  const send = open.reduce((t, c) => t + BigInt(c.our_balance), 0n);
  const receive = open.reduce((t, c) => t + BigInt(c.partner_balance), 0n);
  const lag = summary.chain_head - summary.follower_block;
  $("overview").replaceChildren(
    stat("Node id", el("span", { class: "mono", title: info.node_id }, short(info.node_id, 10)), info.uri,
      copyButton(info.uri, "node URI")),
    stat("Address", el("span", { class: "mono", title: info.address }, short(info.address, 8)), null,
      copyButton(info.address, "address")),
    stat("Chain", `chain ${info.chain_id}`, `contract ${short(info.contract, 6)}`, copyButton(info.contract, "contract")),
    stat("Sync", el("span", { class: lag > 10 ? "warn" : "good" }, health.status),
      `head ${summary.chain_head}, follower ${summary.follower_block} (lag ${lag}), ` +
      `${summary.pending_transactions} transactions pending`),
    stat("On-chain balance", formatEth(summary.onchain_balance), `${summary.onchain_balance} wei`),
    stat("Total capacity", formatEth(send + receive), `${open.length} open of ${state.channels.length} channels`),
    stat("Can send", formatEth(send)),
    stat("Can receive", formatEth(receive)),
    stat("Peers online", String(health.peers)),
  );
}

function channelRow(channel) {
  const deadline = channel.status === "closed" && channel.settle_deadline
    ? el("span", { class: "countdown", "data-deadline": channel.settle_deadline }, deadlineText(channel.settle_deadline))
    : "—";
  return el("tr", { "data-channel": channel.channel_id },
    el("td", { class: "mono", title: `${channel.partner} (${channel.peer})` }, short(channel.partner, 6)),
    el("td", { class: `status-${channel.status}` }, channel.status),
    el("td", { class: "chain", title: `chain id ${channel.chain_id}` }, channel.chain),
    el("td", { class: "num" }, `${formatEth(channel.our_deposit)} / ${formatEth(channel.partner_deposit)}`),
    el("td", { class: "num" }, formatEth(channel.our_balance)),
    el("td", { class: "num" }, formatEth(channel.partner_balance)),
    el("td", { class: "num" }, String(channel.in_flight)),
    el("td", {}, deadline),
    el("td", {}, el("button", { class: "quiet small", type: "button",
      "aria-label": `details of channel ${short(channel.channel_id)}`,
      onclick: () => showChannel(channel.channel_id, true) }, "Details")));
}

function deadlineText(deadline) { return countdown(deadline - Date.now() / 1000); }

function renderChannels() {
  const wanted = $("channel-state").value;
  const needle = $("channel-search").value.trim().toLowerCase();
  const shown = state.channels.filter((c) => (!wanted || c.status === wanted) &&
    (!needle || c.partner.toLowerCase().includes(needle) || c.peer.includes(needle) || c.channel_id.includes(needle)));
  $("channels").tBodies[0].replaceChildren(...shown.map(channelRow));
  $("channels-empty").hidden = shown.length > 0;
}

async function showChannel(channelId, focus) {
  const channel = state.channels.find((c) => c.channel_id === channelId);
  if (!channel) return;
  state.selected = channelId;
  const trail = await get(`/dashboard/channels/${channelId}/audit`);
  const panel = $("channel-detail");
  const chart = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  chart.setAttribute("viewBox", "0 0 600 160");
  chart.setAttribute("class", "chart");
  chart.setAttribute("role", "img");
  chart.setAttribute("aria-label", "both balances after each deposit, withdrawal and payment");
  const ours = trail.map((e) => e.balance_after);
  const theirs = trail.map((e) => e.partner_balance_after);
  chart.setAttribute("data-series", JSON.stringify({ ours, partner: theirs }));  // exact, for tests and tools
  historyChart(chart, [{ name: "ours", values: ours.map(ethNumber) }, { name: "partner", values: theirs.map(ethNumber) }]);
  const actions = isAdmin() && channel.status === "open" ? el("div", { class: "actions" },
    el("button", { type: "button", onclick: () => deposit(channel) }, "Deposit"),
    el("button", { type: "button", onclick: () => withdraw(channel) }, "Withdraw"),
    el("button", { type: "button", class: "danger", onclick: () => closeChannel(channel) }, "Close")) : null;
  panel.replaceChildren(
    el("h2", { tabindex: "-1" }, `Channel ${short(channel.channel_id)}`), copyButton(channel.channel_id, "channel id"),
    el("p", { class: "muted" }, `partner ${channel.partner}, challenge period ${channel.challenge_period} s, ` +
      `nonces ${channel.our_nonce} / ${channel.partner_nonce}`),
    ...(actions ? [actions] : []),  // replaceChildren would print a null as "null"
    el("figure", {}, el("figcaption", {}, "Balances (ETH) after each deposit, withdrawal and payment: ",
      el("span", { class: "key ours" }, "ours"), " and ", el("span", { class: "key partner" }, "the partner's")), chart),
    el("h3", {}, "Audit trail"),
    el("div", { class: "scroll" }, el("table", { class: "audit" },
      el("thead", {}, el("tr", {}, ["#", "When", "What", "Change", "Our balance", "Partner's balance", "Proof"]
        .map((h) => el("th", {}, h)))),
      el("tbody", {}, trail.slice().reverse().slice(0, 100).map((e) => el("tr", { "data-seq": String(e.seq) },
        el("td", {}, String(e.seq)), el("td", {}, time(e.at_ms)), el("td", {}, entryText(e)),
        el("td", { class: "num", title: `${e.change} wei` }, formatEth(e.change)),
        el("td", { class: "num", title: `${e.balance_after} wei` }, formatEth(e.balance_after)),
        el("td", { class: "num", title: `${e.partner_balance_after} wei` }, formatEth(e.partner_balance_after)),
        el("td", { class: "mono", title: e.proof_hash }, NO_PROOF.test(e.proof_hash) ? "—" : short(e.proof_hash, 6))))))));
  panel.hidden = false;
  if (focus) panel.querySelector("h2").focus();
}

const NO_PROOF = /^0x0{64}$/;  // chain events (deposits, withdrawals, closes) carry no balance proof
const ethNumber = (base) => Number(BigInt(base) / 10n ** 9n) / 1e9;  // for drawing only

function entryText(entry) {
  const what = entry.kind.replace("_", " ");
  return entry.kind === "deposit" || entry.kind === "withdraw" ? `${what} by ${entry.by === "us" ? "us" : "partner"}` : what;
}

function chainOf(channelId) {
  const channel = state.channels.find((c) => c.channel_id === channelId);
  return channel ? String(channel.chain) : "—";
}

function renderPayments() {
  const needle = $("payment-search").value.trim().toLowerCase();
  const all = [...state.payments.values()].sort((a, b) => b.at_ms - a.at_ms);
  const matching = all.filter((p) => !needle || String(p.payment_id).includes(needle) ||
    p.channel_id.includes(needle) || p.amount.includes(needle) || formatExact(p.amount).includes(needle) ||
    p.kind.includes(needle));
  $("payments").tBodies[0].replaceChildren(...matching.slice(0, SHOWN_PAYMENTS).map((p) => {
    const row = el("tr", { class: p.fresh ? "new" : null, "data-payment": String(p.payment_id) },
      el("td", {}, time(p.at_ms)),
      el("td", { class: p.kind === "payment_received" ? "good" : "" }, p.kind === "payment_received" ? "received" : "sent"),
      el("td", { class: "num", title: `${p.amount} wei` }, formatEth(p.amount)),
      el("td", { class: "mono" }, String(p.payment_id)),
      el("td", { class: "mono", title: p.channel_id }, short(p.channel_id, 6)),
      el("td", { class: "chain" }, chainOf(p.channel_id)));
    p.fresh = false;
    return row;
  }));
  $("payment-count").textContent = `${matching.length} of ${all.length} payments` +
    (matching.length > SHOWN_PAYMENTS ? `, newest ${SHOWN_PAYMENTS} shown` : "");
  renderCharts();
}

function renderCharts() {
  const now = Date.now();
  barChart($("chart-rate"), paymentsPerSecond(state.payments.values(), now));
  lineChart($("chart-latency"), latencyPoints(state.summary ? state.summary.latency : [], now / 1000));
}

const pushedAt = (seconds) => (seconds === null || seconds === undefined ? "never" : time(seconds * 1000));

function renderTowers() {
  const towers = state.towers;
  const pushes = towers.reduce((t, w) => t + w.pushes_sent, 0);
  const last = Math.max(0, ...towers.map((t) => t.last_push_at || 0));
  $("tower-summary").replaceChildren(
    stat("Towers registered", String(towers.length), `${towers.filter((t) => t.connected).length} connected`),
    stat("Channels covered", String(Math.max(0, ...towers.map((t) => t.channels)))),
    stat("Last proof pushed", el("span", { id: "last-push", "data-at": last ? String(last) : null }, pushedAt(last || null)),
      `${pushes} pushed since the node started, ${towers.reduce((t, w) => t + w.accepted, 0)} accepted`),
    stat("Disputes done", String(state.summary ? state.summary.disputes : 0), "stale closes answered on chain"));
  $("towers").tBodies[0].replaceChildren(...towers.map((t) => el("tr", {},
    el("td", { class: "mono", title: t.uri }, short(t.uri, 10)),
    el("td", { class: t.connected ? "good" : "bad" }, t.connected ? "yes" : "no"),
    el("td", { class: "num" }, String(t.channels)), el("td", { class: "num" }, String(t.pushes_sent)),
    el("td", { class: "num" }, String(t.accepted)), el("td", { class: "num" }, String(t.pending)),
    el("td", { class: "last-push", title: t.last_push_at ? new Date(t.last_push_at * 1000).toISOString() : "" },
      pushedAt(t.last_push_at)))));
  $("towers-empty").hidden = towers.length > 0;
}

function tick() {
  for (const node of document.querySelectorAll(".countdown")) {
    node.textContent = deadlineText(Number(node.dataset.deadline));
  }
}

let toastTimer = null;
function toast(text) {
  $("toast").textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $("toast").textContent = ""; }, 4000);
}

// --- navigation ------------------------------------------------------------------------------------

function selectView(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const on = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`view-${tab.dataset.view}`).hidden = !on;
  }
}

function wire() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => selectView(tab.dataset.view));
    tab.addEventListener("keydown", (key) => {
      const step = key.key === "ArrowRight" ? 1 : key.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      selectView(next.dataset.view);
      next.focus();
    });
  });
  selectView("overview");
  $("login-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    session.token = $("login-token").value.trim();
    $("login-token").value = "";
    signIn();
  });
  $("logout").addEventListener("click", () => { session.token = null; showLogin("Signed out."); });
  $("channel-state").addEventListener("change", renderChannels);
  $("channel-search").addEventListener("input", renderChannels);
  $("payment-search").addEventListener("input", renderPayments);
  $("action-open").addEventListener("click", openChannel);
  $("action-request").addEventListener("click", createRequest);
}

wire();
signIn();
