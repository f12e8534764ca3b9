// The Ledgerline window. Every action is a Tauri command implemented over client/core
// (client/desktop/src/commands.rs); this file holds no keys and no protocol logic. Words
// come from the Fluent catalogs in client/locales (Polish by default).
import { h, render } from "./vendor/preact.module.js";
import { useCallback, useEffect, useState } from "./vendor/hooks.module.js";
import htm from "./vendor/htm.module.js";
import { FluentBundle, FluentResource } from "./vendor/fluent/index.js";

const html = htm.bind(h);
const invoke = (cmd, args = {}) => window.__TAURI__.core.invoke(cmd, args);

// ---- words -------------------------------------------------------------------------
const LANGUAGES = [
  ["pl", "Polski"],
  ["en", "English"],
];
let bundle = null;

async function loadLanguage(lang) {
  const text = await (await fetch(`./locales/${lang}.ftl`)).text();
  const b = new FluentBundle(lang, { useIsolating: false });
  const errors = b.addResource(new FluentResource(text));
  if (errors.length) console.error("catalog", lang, errors);
  bundle = b;
  document.documentElement.lang = lang;
}

function t(id, args) {
  const m = bundle && bundle.getMessage(id);
  return m && m.value ? bundle.formatPattern(m.value, args) : id;
}

const savedLanguage = () => {
  const l = localStorage.getItem("ledgerline.language");
  return LANGUAGES.some(([code]) => code === l) ? l : "pl";
};

const when = (ms) =>
  new Date(ms).toLocaleString(document.documentElement.lang === "pl" ? "pl-PL" : "en-GB", {
    timeZone: "Europe/Warsaw",
    dateStyle: "short",
    timeStyle: "short",
  });

// ---- pieces ------------------------------------------------------------------------
function Field({ label, name, value, onInput, type = "text", placeholder }) {
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

function ErrorBanner({ error, onClose }) {
  if (!error) return null;
  return html`<div class="error" data-test="error" role="alert">
    <strong>${t("error-title")}</strong> ${String(error)}
    <button class="link" onClick=${onClose}>×</button>
  </div>`;
}

// ---- onboarding --------------------------------------------------------------------
function Onboarding({ relay, onDone, fail }) {
  const [mode, setMode] = useState("create");
  const [form, setForm] = useState({ relay, firm: "", me: "", code: "" });
  const [busy, setBusy] = useState(false);
  const [fingerprint, setFingerprint] = useState(null);
  const set = (k) => (v) => setForm({ ...form, [k]: v });

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      if (mode === "create") {
        await invoke("create_firm", { relay: form.relay, firm: form.firm, me: form.me });
        onDone();
      } else {
        const fp = await invoke("join_firm", { relay: form.relay, code: form.code, me: form.me });
        setFingerprint(fp);
      }
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };

  if (fingerprint) {
    return html`<section class="card onboarding">
      <h2>${t("onboarding-fingerprint")}</h2>
      <p class="fingerprint" data-test="fingerprint">${fingerprint}</p>
      <p>${t("onboarding-fingerprint-help")}</p>
      <button data-test="after-join-sync" onClick=${onDone}>${t("nav-sync")}</button>
    </section>`;
  }
  return html`<section class="card onboarding">
    <h1>${t("app-title")}</h1>
    <p class="muted">${t("app-tagline")}</p>
    <div class="tabs">
      <button data-test="mode-create" class=${mode === "create" ? "on" : ""} onClick=${() => setMode("create")}>
        ${t("onboarding-create")}
      </button>
      <button data-test="mode-join" class=${mode === "join" ? "on" : ""} onClick=${() => setMode("join")}>
        ${t("onboarding-join")}
      </button>
    </div>
    <form onSubmit=${submit}>
      <${Field} label=${t("onboarding-relay")} name="relay" value=${form.relay} onInput=${set("relay")} />
      ${mode === "create"
        ? html`<${Field} label=${t("onboarding-firm")} name="firm" value=${form.firm} onInput=${set("firm")} />`
        : html`<${Field} label=${t("onboarding-code")} name="code" value=${form.code} onInput=${set("code")} />`}
      <${Field} label=${t("onboarding-me")} name="me" value=${form.me} onInput=${set("me")} />
      <button data-test="onboarding-submit" type="submit" disabled=${busy}>
        ${busy ? t("onboarding-working") : t(mode === "create" ? "onboarding-create-submit" : "onboarding-join-submit")}
      </button>
    </form>
  </section>`;
}

// ---- a customer --------------------------------------------------------------------
function Timeline({ file, version }) {
  const [items, setItems] = useState(null);
  useEffect(() => {
    invoke("timeline", { file }).then(setItems, () => setItems([]));
  }, [file, version]);
  if (!items) return null;
  if (!items.length) return html`<p class="muted">${t("timeline-empty")}</p>`;
  return html`<ol class="timeline" data-test="timeline">
    ${items
      .slice()
      .reverse()
      .map(
        (i) => html`<li key=${i.cursor} class=${"kind-" + i.kind}>
          <span class="when">${when(i.at_ms)}</span>
          <span class="kind">${t("timeline-kind-" + i.kind)}</span>
          <span class="text">${i.title}</span>
          ${i.status ? html`<span class="status">${t(i.status === "done" ? "task-done" : "task-open")}</span>` : null}
        </li>`,
      )}
  </ol>`;
}

function Chat({ file, version, fail, changed }) {
  const [messages, setMessages] = useState(null);
  const [text, setText] = useState("");
  useEffect(() => {
    invoke("chat_read", { file }).then(setMessages, fail);
  }, [file, version]);
  const send = async (e) => {
    e.preventDefault();
    if (!text.trim()) return;
    try {
      await invoke("chat_send", { file, text });
      setText("");
      changed();
    } catch (err) {
      fail(err);
    }
  };
  return html`<div class="chat">
    ${messages && !messages.length ? html`<p class="muted">${t("chat-empty")}</p>` : null}
    <ol class="messages" data-test="messages">
      ${(messages || []).map(
        (m) => html`<li key=${m.seq}>
          <span class="who">${m.name || ""}</span>
          <span class="when">${when(m.created_ms)}</span>
          <div class="body">
            ${m.deleted ? t("chat-deleted") : m.waiting_for_key ? t("chat-waiting") : m.body}
          </div>
        </li>`,
      )}
    </ol>
    <form class="composer" onSubmit=${send}>
      <input data-test="chat-input" value=${text} placeholder=${t("chat-placeholder")} onInput=${(e) => setText(e.target.value)} />
      <button data-test="chat-send" type="submit">${t("chat-send")}</button>
    </form>
  </div>`;
}

function Tasks({ file, version, fail, changed }) {
  const [tasks, setTasks] = useState(null);
  const [title, setTitle] = useState("");
  const [due, setDue] = useState("");
  useEffect(() => {
    invoke("tasks", { file }).then(setTasks, fail);
  }, [file, version]);
  const add = async (e) => {
    e.preventDefault();
    try {
      await invoke("task_add", { file, title, due: due || null });
      setTitle("");
      setDue("");
      changed();
    } catch (err) {
      fail(err);
    }
  };
  return html`<div class="tasks">
    <form class="inline" onSubmit=${add}>
      <${Field} label=${t("task-title")} name="task-title" value=${title} onInput=${setTitle} />
      <${Field} label=${t("task-due")} name="task-due" type="date" value=${due} onInput=${setDue} />
      <button data-test="task-add" type="submit">${t("task-add-submit")}</button>
    </form>
    ${tasks && !tasks.length ? html`<p class="muted">${t("task-none")}</p>` : null}
    <ul data-test="tasks">
      ${(tasks || []).map(
        (k) => html`<li key=${k.id}>
          <span class="title">${k.title}</span>
          <span class="due">${k.due || ""}</span>
          <span class="status">${t(k.status === "done" ? "task-done" : "task-open")}</span>
        </li>`,
      )}
    </ul>
  </div>`;
}

function Customer({ customer, version, fail, changed }) {
  const [tab, setTab] = useState("timeline");
  const props = { file: customer.file, version, fail, changed };
  return html`<section class="customer">
    <header>
      <h2 data-test="customer-title">${customer.name}</h2>
      ${customer.nip ? html`<span class="muted">NIP ${customer.nip}</span>` : null}
    </header>
    <div class="tabs">
      ${["timeline", "chat", "tasks"].map(
        (k) => html`<button data-test=${"tab-" + k} class=${tab === k ? "on" : ""} onClick=${() => setTab(k)}>
          ${t("tab-" + k)}
        </button>`,
      )}
    </div>
    ${tab === "timeline" ? html`<${Timeline} ...${props} />` : null}
    ${tab === "chat" ? html`<${Chat} ...${props} />` : null}
    ${tab === "tasks" ? html`<${Tasks} ...${props} />` : null}
  </section>`;
}

// ---- the main window ---------------------------------------------------------------
function Main({ me, language, setLanguage, fail }) {
  const [customers, setCustomers] = useState([]);
  const [selected, setSelected] = useState(null);
  const [query, setQuery] = useState("");
  const [adding, setAdding] = useState({ name: "", nip: "" });
  const [version, setVersion] = useState(0);
  const [status, setStatus] = useState("");
  const changed = useCallback(() => setVersion((v) => v + 1), []);

  useEffect(() => {
    invoke("customers").then(setCustomers, fail);
  }, [version]);

  const sync = async () => {
    try {
      const r = await invoke("sync");
      setStatus(t("nav-synced", { messages: r.messages }));
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const add = async (e) => {
    e.preventDefault();
    try {
      const file = await invoke("customer_add", { name: adding.name, nip: adding.nip || null });
      setAdding({ name: "", nip: "" });
      setSelected(file);
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const shown = customers.filter((c) => c.name.toLowerCase().includes(query.toLowerCase()));
  const current = customers.find((c) => c.file === selected);

  return html`<div class="main">
    <header class="top">
      <strong>${t("app-title")}</strong>
      <span data-test="signed-in">${t("nav-signed-in", { me: me.me, firm: me.firm })}</span>
      <span class="status" data-test="status">${status}</span>
      <button data-test="sync" onClick=${sync}>${t("nav-sync")}</button>
      <label class="language">
        ${t("nav-language")}
        <select data-test="language" value=${language} onChange=${(e) => setLanguage(e.target.value)}>
          ${LANGUAGES.map(([code, name]) => html`<option value=${code}>${name}</option>`)}
        </select>
      </label>
    </header>
    <aside class="customers">
      <h3>${t("nav-customers")}</h3>
      <input data-test="search" class="search" placeholder=${t("nav-search")} value=${query} onInput=${(e) => setQuery(e.target.value)} />
      ${customers.length ? null : html`<p class="muted">${t("customer-none")}</p>`}
      <ul data-test="customer-list">
        ${shown.map(
          (c) => html`<li key=${c.file}>
            <button class=${c.file === selected ? "on" : ""} onClick=${() => setSelected(c.file)}>
              ${c.name} ${c.kind === "lead" ? html`<small>${t("customer-lead")}</small>` : null}
            </button>
          </li>`,
        )}
      </ul>
      <form onSubmit=${add}>
        <h4>${t("nav-add-customer")}</h4>
        <${Field} label=${t("customer-name")} name="customer-name" value=${adding.name} onInput=${(v) => setAdding({ ...adding, name: v })} />
        <${Field} label=${t("customer-nip")} name="customer-nip" value=${adding.nip} onInput=${(v) => setAdding({ ...adding, nip: v })} />
        <button data-test="customer-add" type="submit">${t("customer-add-submit")}</button>
      </form>
    </aside>
    <main class="content">
      ${current
        ? html`<${Customer} key=${current.file} customer=${current} version=${version} fail=${fail} changed=${changed} />`
        : html`<p class="muted">${t("customer-pick")}</p>`}
    </main>
  </div>`;
}

function App() {
  const [language, setLanguageState] = useState(savedLanguage());
  // The language whose words are loaded: a new value re-renders every view in it.
  const [loaded, setLoaded] = useState(null);
  const [state, setState] = useState(null);
  const [error, setError] = useState(null);
  const fail = useCallback((e) => setError(e), []);
  const refresh = () => invoke("app_state").then(setState, fail);

  useEffect(() => {
    loadLanguage(language).then(() => setLoaded(language), fail);
  }, [language]);
  useEffect(() => {
    refresh();
  }, []);

  const setLanguage = (l) => {
    localStorage.setItem("ledgerline.language", l);
    setLanguageState(l);
  };
  if (!loaded || !state) return html`<p class="muted">…</p>`;
  return html`<${ErrorBanner} error=${error} onClose=${() => setError(null)} />
    ${state.profile
      ? html`<${Main} me=${state.profile} language=${language} setLanguage=${setLanguage} fail=${fail} />`
      : html`<${Onboarding} relay=${state.relay} onDone=${refresh} fail=${fail} />`}`;
}

render(html`<${App} />`, document.getElementById("app"));
