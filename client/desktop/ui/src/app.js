// The Ledgerline window: onboarding, then the office's work with customers on the left.
// Every action is a Tauri command implemented over client/core (client/desktop/src); this
// code holds no keys and no protocol logic. Words come from the Fluent catalogs in
// client/locales (Polish by default).
import { render } from "./vendor/preact.module.js";
import { useCallback, useEffect, useState } from "./vendor/hooks.module.js";
import { ErrorBanner, Field, LANGUAGES, errorWords, html, invoke, listen, loadLanguage, savedLanguage, t } from "./ui.js";
import { Customer } from "./customer.js";
import { Board, Calendar, Leads, SearchResults } from "./work.js";
import { Office } from "./office.js";
import { Audit } from "./audit.js";
import { GuestMain } from "./guest.js";
import { Mail } from "./mail.js";

/// The live channel's tooltip while it is down: why, in the user's words, then the detail.
function liveWhy(live) {
  if (!live.why) return "";
  const { text, detail } = errorWords(live.why);
  return detail ? `${text}\n${detail}` : text;
}

// ---- onboarding --------------------------------------------------------------------
function Onboarding({ relay, needsPassphrase, onDone, fail }) {
  const [mode, setMode] = useState("create");
  const [form, setForm] = useState({ relay, firm: "", me: "", code: "", recovery: "", pass: "", pass2: "" });
  const [busy, setBusy] = useState(false);
  const [fingerprint, setFingerprint] = useState(null);
  const [recovery, setRecovery] = useState(null);
  const set = (k) => (v) => setForm({ ...form, [k]: v });

  const submit = async (e) => {
    e.preventDefault();
    if (needsPassphrase && form.pass !== form.pass2) {
      fail(t("passphrase-mismatch"));
      return;
    }
    const passphrase = needsPassphrase ? form.pass : null;
    setBusy(true);
    try {
      if (mode === "recover") {
        await invoke("recover_member", { relay: form.relay, recoveryKey: form.recovery, passphrase });
        onDone();
      } else if (mode === "create") {
        const key = await invoke("create_firm", { relay: form.relay, firm: form.firm, me: form.me, passphrase });
        if (key) setRecovery(key);
        else onDone();
      } else {
        const joined = await invoke("join_firm", { relay: form.relay, code: form.code, me: form.me, passphrase });
        setRecovery(joined.recovery_key || null);
        setFingerprint(joined.fingerprint);
      }
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };

  // The recovery key is shown once, here; the app keeps it nowhere.
  const recoveryCard = recovery
    ? html`<div class="recovery">
        <h2>${t("onboarding-recovery")}</h2>
        <p class="fingerprint" data-test="recovery-key">${recovery}</p>
        <p>${t("onboarding-recovery-help")}</p>
      </div>`
    : null;
  if (fingerprint) {
    return html`<section class="card onboarding">
      <h2>${t("onboarding-fingerprint")}</h2>
      <p class="fingerprint" data-test="fingerprint">${fingerprint}</p>
      <p>${t("onboarding-fingerprint-help")}</p>
      ${recoveryCard}
      <button data-test="after-join-sync" onClick=${onDone}>${t("onboarding-continue")}</button>
    </section>`;
  }
  if (recovery) {
    return html`<section class="card onboarding">
      ${recoveryCard}
      <button data-test="recovery-saved" onClick=${onDone}>${t("onboarding-recovery-saved")}</button>
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
      <button data-test="mode-recover" class=${mode === "recover" ? "on" : ""} onClick=${() => setMode("recover")}>
        ${t("onboarding-recover")}
      </button>
    </div>
    <form onSubmit=${submit}>
      <${Field} label=${t("onboarding-relay")} name="relay" value=${form.relay} onInput=${set("relay")} />
      ${mode === "create"
        ? html`<${Field} label=${t("onboarding-firm")} name="firm" value=${form.firm} onInput=${set("firm")} />`
        : mode === "join"
          ? html`<${Field} label=${t("onboarding-code")} name="code" value=${form.code} onInput=${set("code")} />`
          : html`<p class="muted">${t("onboarding-recover-help")}</p>
              <${Field} label=${t("onboarding-recovery-input")} name="recovery" value=${form.recovery} onInput=${set("recovery")} />`}
      ${mode === "recover" ? null : html`<${Field} label=${t("onboarding-me")} name="me" value=${form.me} onInput=${set("me")} />`}
      ${needsPassphrase
        ? html`<p class="muted">${t("passphrase-why")}</p>
            <${Field} label=${t("passphrase-new")} name="pass" type="password" value=${form.pass} onInput=${set("pass")} />
            <${Field} label=${t("passphrase-repeat")} name="pass2" type="password" value=${form.pass2} onInput=${set("pass2")} />`
        : null}
      <button data-test="onboarding-submit" type="submit" disabled=${busy}>
        ${busy ? t("onboarding-working") : t(mode === "create" ? "onboarding-create-submit" : mode === "join" ? "onboarding-join-submit" : "onboarding-recover-submit")}
      </button>
    </form>
  </section>`;
}

// ---- locked --------------------------------------------------------------------------
function Unlock({ onDone, fail }) {
  const [pass, setPass] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await invoke("unlock_profile", { passphrase: pass });
      setPass("");
      onDone();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card onboarding" data-test="unlock" onSubmit=${submit}>
    <h1>${t("app-title")}</h1>
    <p>${t("unlock-help")}</p>
    <${Field} label=${t("unlock-passphrase")} name="unlock-pass" type="password" value=${pass} onInput=${setPass} />
    <button data-test="unlock-submit" type="submit" disabled=${busy}>${busy ? t("onboarding-working") : t("unlock-submit")}</button>
  </form>`;
}

// ---- waiting for approval ------------------------------------------------------------
function Waiting({ me, refresh }) {
  // Asks again every few seconds: the window moves on by itself once approved.
  useEffect(() => {
    const timer = setInterval(refresh, 3000);
    return () => clearInterval(timer);
  }, []);
  return html`<section class="card onboarding" data-test="waiting">
    <h2>${t("waiting-title")}</h2>
    <p>${t("waiting-help", { firm: me.firm })}</p>
    <p class="fingerprint" data-test="fingerprint">${me.fingerprint || ""}</p>
    <button data-test="waiting-check" onClick=${refresh}>${t("waiting-check")}</button>
  </section>`;
}

// ---- settings ----------------------------------------------------------------------
function Settings({ me, relay, language, setLanguage, fail, refresh }) {
  const [address, setAddress] = useState(relay);
  const [saved, setSaved] = useState(false);
  const save = async (e) => {
    e.preventDefault();
    setSaved(false);
    try {
      await invoke("set_relay", { relay: address });
      setSaved(true);
      refresh();
    } catch (err) {
      fail(err);
    }
  };
  return html`<section class="settings" data-test="settings">
    <h2>${t("nav-settings")}</h2>
    <div class="card">
      <label class="field">
        <span>${t("nav-language")}</span>
        <select data-test="language" value=${language} onChange=${(e) => setLanguage(e.target.value)}>
          ${LANGUAGES.map(([code, name]) => html`<option value=${code}>${name}</option>`)}
        </select>
      </label>
    </div>
    <form class="card" onSubmit=${save}>
      <${Field} label=${t("settings-relay")} name="settings-relay" value=${address} onInput=${setAddress} />
      <button data-test="settings-relay-save" type="submit">${t("settings-save")}</button>
      ${saved ? html`<span class="ok" data-test="settings-saved">${t("settings-saved")}</span>` : null}
      <p class="muted">${t("settings-relay-help")}</p>
    </form>
    <${ReplyTemplates} me=${me} fail=${fail} />
    <div class="card">
      <h3>${t("settings-store")}</h3>
      <p>${t(me.keyring ? "settings-store-keyring" : "settings-store-passphrase")}</p>
      <p class="muted">${t("settings-fingerprint")}: <code>${me.fingerprint || "—"}</code></p>
      ${me.keyring ? null : html`<${ChangePassphrase} fail=${fail} />`}
    </div>
  </section>`;
}

/// Reply templates: the firm's (admins set them) and this member's own.
function ReplyTemplates({ me, fail }) {
  const blank = () => ({ name: "", body: "", personal: !me.admin });
  const [all, setAll] = useState([]);
  const [form, setForm] = useState(blank);
  const load = () => invoke("reply_templates").then(setAll, fail);
  useEffect(() => {
    load();
  }, []);
  const save = async (e) => {
    e.preventDefault();
    try {
      await invoke("reply_set", form);
      setForm(blank());
      load();
    } catch (err) {
      fail(err);
    }
  };
  const remove = async (x) => {
    try {
      await invoke("reply_delete", { name: x.name, personal: x.personal });
      load();
    } catch (err) {
      fail(err);
    }
  };
  return html`<div class="card" data-test="reply-templates">
    <h3>${t("reply-title")}</h3>
    <p class="muted">${t("reply-help")}</p>
    <ul class="templates-list">
      ${all.map(
        (x) => html`<li key=${x.name + x.personal} data-test="reply-template">
          <b>${x.name}</b> <span class="muted">${t(x.personal ? "reply-personal" : "reply-firm")}</span>
          <div class="body">${x.body}</div>
          ${x.personal || me.admin
            ? html`<button class="link" data-test="reply-delete" onClick=${() => remove(x)}>${t("reply-delete")}</button>`
            : null}
        </li>`,
      )}
    </ul>
    <form onSubmit=${save}>
      <${Field} label=${t("reply-name")} name="reply-name" value=${form.name} onInput=${(v) => setForm({ ...form, name: v })} />
      <label class="field">
        <span>${t("reply-body")}</span>
        <textarea data-test="reply-body" value=${form.body} onInput=${(e) => setForm({ ...form, body: e.target.value })}></textarea>
      </label>
      ${me.admin
        ? html`<label class="check"><input type="checkbox" data-test="reply-personal" checked=${form.personal} onChange=${(e) => setForm({ ...form, personal: e.target.checked })} /> ${t("reply-only-mine")}</label>`
        : null}
      <button data-test="reply-save" type="submit">${t("reply-save")}</button>
    </form>
  </div>`;
}

function ChangePassphrase({ fail }) {
  const [form, setForm] = useState({ old: "", pass: "", pass2: "" });
  const [done, setDone] = useState(false);
  const set = (k) => (v) => setForm({ ...form, [k]: v });
  const submit = async (e) => {
    e.preventDefault();
    setDone(false);
    if (form.pass !== form.pass2) {
      fail(t("passphrase-mismatch"));
      return;
    }
    try {
      await invoke("change_passphrase", { old: form.old, new: form.pass });
      setForm({ old: "", pass: "", pass2: "" });
      setDone(true);
    } catch (err) {
      fail(err);
    }
  };
  return html`<form onSubmit=${submit} data-test="change-passphrase">
    <h4>${t("passphrase-change")}</h4>
    <${Field} label=${t("passphrase-old")} name="pass-old" type="password" value=${form.old} onInput=${set("old")} />
    <${Field} label=${t("passphrase-new")} name="pass-new" type="password" value=${form.pass} onInput=${set("pass")} />
    <${Field} label=${t("passphrase-repeat")} name="pass-new2" type="password" value=${form.pass2} onInput=${set("pass2")} />
    <button data-test="passphrase-save" type="submit">${t("passphrase-change-submit")}</button>
    ${done ? html`<span class="ok" data-test="passphrase-changed">${t("passphrase-changed")}</span>` : null}
  </form>`;
}

// ---- the main window ---------------------------------------------------------------
const SECTIONS = ["customers", "leads", "board", "calendar", "mail", "office", "audit", "settings"];

function Main({ state, language, setLanguage, fail, refresh }) {
  const me = state.profile;
  const [section, setSection] = useState("customers");
  const [customers, setCustomers] = useState([]);
  const [selected, setSelected] = useState(null);
  const [query, setQuery] = useState("");
  const [global, setGlobal] = useState("");
  const [adding, setAdding] = useState({ name: "", nip: "" });
  const [version, setVersion] = useState(0);
  const [status, setStatus] = useState("");
  const changed = useCallback(() => setVersion((v) => v + 1), []);

  useEffect(() => {
    invoke("customers").then(setCustomers, fail);
  }, [version]);
  // What colleagues do arrives by itself (the relay's push channel): views refresh when a
  // background sync brought something new.
  const [live, setLive] = useState(null);
  useEffect(() => {
    const stops = [
      listen("synced", (r) => {
        // Who is who (names, the firm's name) may have arrived with any sync.
        refresh();
        if (r.messages || r.records || r.roster_events || r.room_keys) changed();
      }),
      listen("live", setLive),
    ];
    invoke("live_state").then((l) => l && setLive(l), fail);
    return () => stops.forEach((s) => s());
  }, []);

  const sync = async () => {
    try {
      const r = await invoke("sync");
      setStatus(t("nav-synced", { messages: r.messages }));
      changed();
      refresh();
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
      setSection("customers");
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const open = (file) => {
    setSelected(file);
    setSection("customers");
    setGlobal("");
  };
  const shown = customers.filter((c) => c.name.toLowerCase().includes(query.toLowerCase()));
  const current = customers.find((c) => c.file === selected);
  const props = { version, fail, changed, open };

  let content;
  if (global.trim().length >= 2) content = html`<${SearchResults} query=${global} fail=${fail} open=${open} />`;
  else if (section === "customers")
    content = current
      ? html`<${Customer} key=${current.file} customer=${current} me=${me.member} profile=${me} ...${props} />`
      : html`<p class="muted">${t("customer-pick")}</p>`;
  else if (section === "leads") content = html`<${Leads} customers=${customers} ...${props} />`;
  else if (section === "board") content = html`<${Board} ...${props} />`;
  else if (section === "calendar") content = html`<${Calendar} ...${props} />`;
  else if (section === "mail") content = html`<${Mail} customers=${customers} ...${props} />`;
  else if (section === "office") content = html`<${Office} ...${props} />`;
  else if (section === "audit") content = html`<${Audit} fail=${fail} />`;
  else content = html`<${Settings} me=${me} relay=${state.relay} language=${language} setLanguage=${setLanguage} fail=${fail} refresh=${refresh} />`;

  return html`<div class="main">
    <header class="top">
      <strong>${t("app-title")}</strong>
      <nav class="sections">
        ${SECTIONS.map(
          (s) => html`<button data-test=${"nav-" + s} class=${section === s && !global ? "on" : ""} onClick=${() => {
            setSection(s);
            setGlobal("");
            // A failure belongs to the view it happened in: moving on puts it away.
            fail(null);
          }}>${t("nav-" + s)}</button>`,
        )}
      </nav>
      <input data-test="global-search" class="global-search" placeholder=${t("nav-global-search")} value=${global} onInput=${(e) => setGlobal(e.target.value)} />
      <div class="top-right">
      <span class="status" data-test="status">${status}</span>
      ${live
        ? html`<span class=${"live " + live.state} data-test="live" title=${liveWhy(live)}>
            ${live.state === "offline" ? t("live-offline", { seconds: Math.ceil(live.retry_in_ms / 1000) }) : t("live-" + live.state)}
          </span>`
        : null}
      <button data-test="sync" onClick=${sync}>${t("nav-sync")}</button>
      </div>
    </header>
    <aside class="customers">
      <p class="signed-in muted" data-test="signed-in">${t("nav-signed-in", { me: me.me, firm: me.firm })}</p>
      <h3>${t("nav-customers")}</h3>
      <input data-test="search" class="search" placeholder=${t("nav-search")} value=${query} onInput=${(e) => setQuery(e.target.value)} />
      ${customers.length ? null : html`<p class="muted">${t("customer-none")}</p>`}
      <ul data-test="customer-list">
        ${shown.map(
          (c) => html`<li key=${c.file}>
            <button class=${c.file === selected ? "on" : ""} onClick=${() => open(c.file)}>
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
    <main class="content">${content}</main>
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
    ${state.locked
      ? html`<${Unlock} onDone=${refresh} fail=${fail} />`
      : state.profile && !state.profile.admitted
      ? html`<${Waiting} me=${state.profile} refresh=${refresh} />`
      : state.profile && state.profile.guest
      ? html`<${GuestMain} state=${state} language=${language} setLanguage=${setLanguage} fail=${fail} refresh=${refresh} />`
      : state.profile
      ? html`<${Main} state=${state} language=${language} setLanguage=${setLanguage} fail=${fail} refresh=${refresh} />`
      : html`<${Onboarding} relay=${state.relay} needsPassphrase=${state.needs_passphrase} onDone=${refresh} fail=${fail} />`}`;
}

render(html`<${App} />`, document.getElementById("app"));
