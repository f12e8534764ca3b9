// A guest's window (`protocol-spec/guests.md`): one customer's conversation with the
// office, the documents shared in it, and uploads. Nothing else of the firm is shown,
// because nothing else is theirs: the relay refuses it and their device holds no key of it.
import { useEffect, useState } from "./vendor/hooks.module.js";
import { LANGUAGES, html, invoke, listen, t } from "./ui.js";
import { Conversation } from "./customer.js";

export function GuestMain({ state, language, setLanguage, fail, refresh }) {
  const me = state.profile;
  const [version, setVersion] = useState(0);
  const [status, setStatus] = useState("");
  const changed = () => setVersion((v) => v + 1);
  useEffect(() => {
    // The office's messages arrive by themselves (the relay's push channel).
    const stop = listen("synced", (r) => {
      refresh();
      if (r.messages || r.room_keys) changed();
    });
    return stop;
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
  return html`<div class="main guest" data-test="guest-main">
    <header class="top">
      <strong>${t("app-title")}</strong>
      <span class="signed-in muted" data-test="signed-in">${t("guest-signed-in", { me: me.me, firm: me.firm })}</span>
      <select data-test="language" value=${language} onChange=${(e) => setLanguage(e.target.value)}>
        ${LANGUAGES.map(([code, name]) => html`<option value=${code}>${name}</option>`)}
      </select>
      <span class="status" data-test="status">${status}</span>
      <button data-test="sync" onClick=${sync}>${t("nav-sync")}</button>
    </header>
    <main class="content guest-content">
      <h2 data-test="guest-title">${t("guest-title", { firm: me.firm })}</h2>
      <p class="muted">${t("guest-help")}</p>
      <${Conversation} staff=${false} version=${version} fail=${fail} changed=${changed} />
    </main>
  </div>`;
}
