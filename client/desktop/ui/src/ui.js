// What every view shares: the Tauri bridge, the words (Fluent, Polish by default), dates,
// and small pieces (fields, the error banner, progress bars). No keys, no protocol logic:
// every action is a Tauri command over client/core (client/desktop/src).
import { h } from "./vendor/preact.module.js";
import htm from "./vendor/htm.module.js";
import { FluentBundle, FluentResource } from "./vendor/fluent/index.js";

export const html = htm.bind(h);
export const invoke = (cmd, args = {}) => window.__TAURI__.core.invoke(cmd, args);
/// Listens to an app event; returns a function that stops listening.
export const listen = (name, f) => {
  const stop = window.__TAURI__.event.listen(name, (e) => f(e.payload));
  return () => stop.then((un) => un());
};

// ---- words -------------------------------------------------------------------------
export const LANGUAGES = [
  ["pl", "Polski"],
  ["en", "English"],
];
let bundle = null;

export async function loadLanguage(lang) {
  const text = await (await fetch(`./locales/${lang}.ftl`)).text();
  const b = new FluentBundle(lang, { useIsolating: false });
  const errors = b.addResource(new FluentResource(text));
  if (errors.length) console.error("catalog", lang, errors);
  bundle = b;
  document.documentElement.lang = lang;
}

export function t(id, args) {
  const m = bundle && bundle.getMessage(id);
  return m && m.value ? bundle.formatPattern(m.value, args) : id;
}

/// Whether the catalog has `id`.
export const has = (id) => Boolean(bundle && bundle.getMessage(id));

export const savedLanguage = () => {
  const l = localStorage.getItem("ledgerline.language");
  return LANGUAGES.some(([code]) => code === l) ? l : "pl";
};

const locale = () => (document.documentElement.lang === "pl" ? "pl-PL" : "en-GB");
export const ZONE = "Europe/Warsaw";

export const when = (ms) =>
  new Date(ms).toLocaleString(locale(), { timeZone: ZONE, dateStyle: "short", timeStyle: "short" });

/// The Warsaw day holding `ms`, in words.
export const dayOf = (ms) => new Date(ms).toLocaleDateString(locale(), { timeZone: ZONE, dateStyle: "medium" });

/// A day (`YYYY-MM-DD`) in words, e.g. "pon., 14 gru".
export const dayName = (iso, opts = { weekday: "short", day: "numeric", month: "short" }) =>
  new Date(iso + "T12:00:00Z").toLocaleDateString(locale(), { ...opts, timeZone: "UTC" });

export const monthName = (iso) =>
  new Date(iso + "T12:00:00Z").toLocaleDateString(locale(), { month: "long", year: "numeric", timeZone: "UTC" });

/// Today in Warsaw, `YYYY-MM-DD`.
export const today = () => new Date().toLocaleDateString("sv-SE", { timeZone: ZONE });

/// `iso` moved by `days`.
export function addDays(iso, days) {
  const d = new Date(iso + "T12:00:00Z");
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export const bytes = (n) => {
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
};

/// Grosze as Polish invoices write them: `1 234,50 zł` (integer arithmetic only).
export const money = (grosze) => {
  const sign = grosze < 0 ? "-" : "";
  const g = Math.abs(grosze);
  const zl = String(Math.floor(g / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0");
  return `${sign}${zl},${String(g % 100).padStart(2, "0")}\u00a0zł`;
};

/// An exact decimal amount as the client core sends it (`"-1234.5"`), written the same way:
/// `-1 234,50 zł`, other currencies by their code (string arithmetic, never a float).
export const amount = (s, currency = "PLN") => {
  const neg = s.startsWith("-");
  const [w, f = ""] = (neg ? s.slice(1) : s).split(".");
  const whole = w.replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0");
  return `${neg ? "-" : ""}${whole},${(f + "00").slice(0, 2)}\u00a0${currency === "PLN" ? "zł" : currency}`;
};

// ---- pieces ------------------------------------------------------------------------
export function Field({ label, name, value, onInput, type = "text", placeholder }) {
  return html`<label class="field">
    <span>${label}</span>
    <input
      data-test=${name}
      name=${name}
      type=${type}
      value=${value}
      placeholder=${placeholder || ""}
      onInput=${(e) => onInput(e.target.value)}
    />
  </label>`;
}

/// A failure in the user's words. A command fails with `{code, reason, detail}`: the
/// catalog's `error-CODE-REASON` when it has one, else `error-CODE`, names it; the English
/// `detail` is kept for whoever helps the user. A text (the window's own words) is as it is.
/// The detail is shown open when the words are only the kind's general ones ("This request
/// is not valid") and the kind's words do not say it all: it then says what to fix (the
/// placeholder, the name not found). Otherwise it stays folded.
export function errorWords(error) {
  if (error && typeof error === "object" && typeof error.code === "string") {
    const word = (s) => s.replaceAll("_", "-");
    const general = `error-${word(error.code)}`;
    const specific = typeof error.reason === "string" ? `${general}-${word(error.reason)}` : null;
    const id = [specific, general].find((i) => i && has(i));
    const open = id !== specific && !SAYS_ENOUGH.has(error.code);
    return { text: t(id || "error-unknown"), detail: error.detail || null, open };
  }
  return { text: String(error), detail: null, open: false };
}

/// Kinds whose general words are the whole story for the user.
const SAYS_ENOUGH = new Set(["relay_unreachable", "relay_garbage", "integrity", "fingerprint_mismatch", "wrong_key", "queued"]);

export function ErrorBanner({ error, onClose }) {
  if (!error) return null;
  const { text, detail, open } = errorWords(error);
  return html`<div class="error" data-test="error" role="alert">
    <strong>${t("error-title")}</strong> <span data-test="error-text">${text}</span>
    <button class="link" onClick=${onClose}>×</button>
    ${detail
      ? html`<details data-test="error-detail" open=${open}><summary>${t("error-details")}</summary><code>${detail}</code></details>`
      : null}
  </div>`;
}

/// A labelled progress bar: `done` of `total`.
export function Bar({ name, label, done, total }) {
  const pct = total ? Math.floor((done * 100) / total) : 100;
  return html`<div class="bar" data-test=${name} data-percent=${pct}>
    <div class="bar-label">${label} <span class="muted">${pct}%</span></div>
    <progress max="100" value=${pct}></progress>
  </div>`;
}
