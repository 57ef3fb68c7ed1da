// Admin actions in one dialog: fill in, review (amounts in ETH and base units), confirm, watch it confirm.

import { get, imageUrl, post } from "./api.js";
import { el, formatExact, parseEth, short } from "./format.js";

const $ = (id) => document.getElementById(id);
const FINAL = new Set(["mined", "failed", "skipped"]);

function amountRows(label, base) {
  return [[label, formatExact(base)], [`${label} (base units)`, base.toString()]];
}

function ethField(values, name, label) {
  const base = parseEth(values[name]);
  if (base === null || base <= 0n) throw new Error(`${label}: enter an amount in ETH, like 0.5`);
  return base;
}

// spec: {title, fields: [{name, label, value?, placeholder?}], check(values) -> {rows, body}, send(body)}
export function runAction(spec) {
  const dialog = $("dialog");
  const ok = $("dialog-ok");
  const review = $("dialog-review");
  const progress = $("dialog-progress");
  const error = $("dialog-error");
  $("dialog-title").textContent = spec.title;
  $("dialog-fields").replaceChildren(...spec.fields.map((f) =>
    el("label", {}, f.label, el("input", { name: f.name, value: f.value ?? "", placeholder: f.placeholder ?? "",
      required: f.optional ? null : true, autocomplete: "off", inputmode: f.eth ? "decimal" : null }))));
  review.hidden = true;
  progress.replaceChildren();
  error.textContent = "";
  ok.textContent = "Review";
  ok.disabled = false;
  let checked = null;

  const values = () => Object.fromEntries(spec.fields.map((f) =>
    [f.name, $("dialog-fields").querySelector(`[name="${f.name}"]`).value.trim()]));

  ok.onclick = async (click) => {
    click.preventDefault();
    error.textContent = "";
    if (checked === null) {
      try { checked = spec.check(values()); } catch (problem) { error.textContent = problem.message; return; }
      review.replaceChildren(el("p", {}, "Please confirm:"),
        el("dl", {}, checked.rows.map(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)])));
      review.hidden = false;
      for (const input of $("dialog-fields").querySelectorAll("input")) input.disabled = true;
      ok.textContent = "Confirm";
      ok.focus();
      return;
    }
    ok.disabled = true;
    progress.replaceChildren(el("p", {}, "Sending…"));
    try {
      const result = await spec.send(checked.body);
      await (spec.follow || followOperation)(result, progress);
      ok.textContent = "Done";
      ok.disabled = false;
      ok.focus();  // disabling it while sending dropped the focus: give keyboard users their place back
      ok.onclick = (again) => { again.preventDefault(); dialog.close(); };
    } catch (problem) {
      error.textContent = problem.message;
      ok.disabled = false;
      ok.textContent = "Retry";
      ok.focus();
    }
  };
  $("dialog-cancel").onclick = () => dialog.close();
  dialog.showModal();
  const first = dialog.querySelector("input");
  (first || ok).focus();
}

// Shows an accepted operation until it is mined (or fails), with its transaction hash.
export async function followOperation(result, progress) {
  let status = result;
  const line = el("p", { class: "operation" });
  progress.replaceChildren(line);
  const show = () => {
    const tx = status.tx_hash ? ` · tx ${short(status.tx_hash)}` : "";
    line.textContent = `${status.kind || "operation"}: ${status.status}${tx}`;
    line.title = status.tx_hash || "";
    line.className = `operation ${status.status === "mined" ? "good" : status.status === "failed" ? "bad" : ""}`;
  };
  show();
  if (status.operation_id === null || status.operation_id === undefined) {
    line.textContent = `${status.status.replace("_", " ")}: the node completes this with the partner`;
    return;
  }
  while (!FINAL.has(status.status)) {
    await new Promise((resolve) => setTimeout(resolve, 400));
    status = await get(`/operations/${status.operation_id}`);
    show();
  }
  if (status.status === "failed") throw new Error(status.error || "the transaction failed");
}

export function openChannel() {
  runAction({
    title: "Open a channel",
    fields: [
      { name: "uri", label: "Partner (node id@host:port)", placeholder: "03ab…@127.0.0.1:9735" },
      { name: "deposit", label: "Deposit (ETH)", placeholder: "0.1", eth: true },
      { name: "period", label: "Challenge period (seconds)", value: "3600" },
    ],
    check(v) {
      const deposit = ethField(v, "deposit", "Deposit");
      const period = Number(v.period);
      if (!Number.isInteger(period) || period < 1) throw new Error("Challenge period: a whole number of seconds");
      if (!/^[0-9a-f]{66}@.+:\d+$/i.test(v.uri)) throw new Error("Partner: expected <node id>@host:port");
      return { rows: [["Partner", v.uri], ...amountRows("Deposit", deposit), ["Challenge period", `${period} s`]],
        body: { uri: v.uri, deposit: deposit.toString(), challenge_period: period } };
    },
    send: (body) => post("/channels", body),
  });
}

export function deposit(channel) {
  runAction({
    title: "Deposit into the channel",
    fields: [{ name: "amount", label: "Add (ETH)", placeholder: "0.1", eth: true }],
    check(v) {
      const added = ethField(v, "amount", "Amount");
      const total = BigInt(channel.our_deposit) + added;
      return { rows: [["Channel", short(channel.channel_id)], ...amountRows("Added", added),
        ...amountRows("New total deposit", total)], body: { amount: added.toString() } };
    },
    send: (body) => post(`/channels/${channel.channel_id}/deposit`, body),
  });
}

export function withdraw(channel) {
  runAction({
    title: "Withdraw from the channel",
    fields: [{ name: "amount", label: "Withdraw (ETH)", placeholder: "0.1", eth: true }],
    check(v) {
      const amount = ethField(v, "amount", "Amount");
      if (amount > BigInt(channel.our_balance)) throw new Error("Amount: more than the channel holds for us");
      return { rows: [["Channel", short(channel.channel_id)], ...amountRows("Withdraw", amount)],
        body: { amount: amount.toString() } };
    },
    send: (body) => post(`/channels/${channel.channel_id}/withdraw`, body),
  });
}

export function closeChannel(channel) {
  runAction({
    title: "Close the channel",
    fields: [],
    check() {
      return { rows: [["Channel", short(channel.channel_id)], ["Partner", channel.partner],
        ...amountRows("We receive", BigInt(channel.our_balance)),
        ...amountRows("Partner receives", BigInt(channel.partner_balance))], body: { force: false } };
    },
    send: (body) => post(`/channels/${channel.channel_id}/close`, body),
  });
}

export function createRequest() {
  runAction({
    title: "Create a payment request",
    fields: [
      { name: "amount", label: "Amount (ETH)", placeholder: "0.01", eth: true },
      { name: "description", label: "Description", optional: true },
    ],
    check(v) {
      const amount = ethField(v, "amount", "Amount");
      return { rows: [...amountRows("Amount", amount), ["Description", v.description || "—"]],
        body: { amount: amount.toString(), description: v.description } };
    },
    send: (body) => post("/requests", body),
    async follow(request, progress) {
      const url = await imageUrl(`/requests/${request.payment_hash}/qr`);
      progress.replaceChildren(el("img", { src: url, alt: "QR code of the payment request" }),
        el("p", { class: "mono", id: "request-text" }, request.request));
    },
  });
}
