// The node's API as the page uses it: the session's token, JSON calls, and the live event stream.

const TOKEN_KEY = "channeld.token";
export const BASE = "/api/v1";

export class AuthFailed extends Error {}

export class ApiRefused extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// Payment ids are 64-bit integers, beyond what a JS number holds exactly: read them as strings.
export function parseJson(text) {
  return JSON.parse(text.replace(/"payment_id":\s*(\d+)/g, '"payment_id":"$1"'));
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
  },
};

function errorText(status, body) {
  if (body && typeof body.error === "string") return body.error;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
  }
  if (body && typeof body.detail === "string") return body.detail;
  return `HTTP ${status}`;
}

export async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(BASE + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let document = null;
  try { document = parseJson(await response.text()); } catch { document = null; }
  if (response.status === 401) throw new AuthFailed(errorText(401, document));
  if (!response.ok) throw new ApiRefused(response.status, errorText(response.status, document));
  return document;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});

// The QR image needs the bearer token, so it is fetched and shown from a blob URL.
export async function imageUrl(path) {
  const response = await fetch(BASE + path, { headers: { Authorization: `Bearer ${session.token}` } });
  if (!response.ok) throw new ApiRefused(response.status, `HTTP ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

export async function redeemLoginCode(code) {
  const response = await fetch(`${BASE}/dashboard/login`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }),
  });
  const document = await response.json().catch(() => null);
  if (!response.ok) throw new AuthFailed(errorText(response.status, document));
  return document;
}

// Events after `after`, forever: reconnects from the last sequence number seen, so none is lost.
export function openEventStream(after, { onEvent, onState, onAuthFailed }) {
  let last = after;
  let socket = null;
  let stopped = false;
  let delay = 500;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ after: String(last), access_token: session.token || "" });
    socket = new WebSocket(`${scheme}://${location.host}${BASE}/events/ws?${query}`);
    socket.onopen = () => { delay = 500; onState(true); };
    socket.onmessage = (message) => {
      const event = parseJson(message.data);
      if (event.seq <= last) return;
      last = event.seq;
      onEvent(event);
    };
    socket.onclose = (closing) => {
      onState(false);
      if (stopped) return;
      if (closing.code === 1008) { onAuthFailed(closing.reason); return; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  connect();
  return { stop() { stopped = true; if (socket) socket.close(); } };
}
