// Amounts are strings of base units (wei); BigInt keeps them exact.

const WEI = 10n ** 18n;
const ETH_TEXT = /^(\d{1,30})(?:\.(\d{1,18}))?$/;

export function formatEth(base, digits = 6) {
  const value = BigInt(base);
  const sign = value < 0n ? "-" : "";
  const abs = value < 0n ? -value : value;
  const whole = abs / WEI;
  let fraction = (abs % WEI).toString().padStart(18, "0").slice(0, digits).replace(/0+$/, "");
  if (!fraction && abs % WEI !== 0n && digits > 0) fraction = "0".repeat(digits - 1) + "1";
  return `${sign}${whole}${fraction ? "." + fraction : ""} ETH`;
}

export function formatExact(base) {
  const value = BigInt(base);
  const abs = value < 0n ? -value : value;
  const fraction = (abs % WEI).toString().padStart(18, "0").replace(/0+$/, "");
  return `${value < 0n ? "-" : ""}${abs / WEI}${fraction ? "." + fraction : ""} ETH`;
}

// "1.5" (ETH) -> 1500000000000000000n; null for anything that is not a plain non-negative amount.
export function parseEth(text) {
  const match = ETH_TEXT.exec(String(text).trim());
  if (!match) return null;
  return BigInt(match[1]) * WEI + BigInt((match[2] || "").padEnd(18, "0"));
}

export const short = (hex, keep = 8) =>
  !hex ? "" : hex.length <= 2 * keep + 3 ? hex : `${hex.slice(0, keep + 2)}…${hex.slice(-keep)}`;

// The challenge period's remaining time; at zero the node settles at the chain's next block.
export function countdown(seconds) {
  if (seconds <= 0) return "ended, settling";
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}

export const time = (ms) => new Date(ms).toLocaleTimeString();

// A small element builder: el("td", {class: "num"}, "text", child...). Text is never parsed as markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
