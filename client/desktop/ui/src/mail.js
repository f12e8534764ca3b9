// Mail intake (protocol-spec/mail.md): the office's mailbox read on this device, each
// message sorted into its customer's file; what nothing placed waits in the inbox for a
// person to assign it (and, in the same step, to make a rule for such mail). A customer's
// mail is its own tab.
import { useEffect, useState } from "./vendor/hooks.module.js";
import { Field, html, invoke, t, when } from "./ui.js";

function Connect({ fail, done, more }) {
  const [form, setForm] = useState({ host: "", port: "993", user: "", folder: "INBOX", password: "", caFile: "" });
  const [busy, setBusy] = useState(false);
  const set = (k) => (v) => setForm({ ...form, [k]: v });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await invoke("mail_connect", { ...form, port: Number(form.port) || 993, caFile: form.caFile || null });
      setForm({ ...form, password: "" });
      done();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  const form_ = html`<form class="card" data-test="mail-connect-form" onSubmit=${submit}>
    ${more ? null : html`<h3>${t("mail-connect-title")}</h3>`}
    <p class="muted">${t("mail-connect-help")}</p>
    <div class="inline">
      <${Field} label=${t("mail-host")} name="mail-host" value=${form.host} onInput=${set("host")} placeholder="imap.example.pl" />
      <${Field} label=${t("mail-port")} name="mail-port" value=${form.port} onInput=${set("port")} />
      <${Field} label=${t("mail-user")} name="mail-user" value=${form.user} onInput=${set("user")} />
      <${Field} label=${t("mail-password")} name="mail-password" type="password" value=${form.password} onInput=${set("password")} />
      <${Field} label=${t("mail-folder")} name="mail-folder" value=${form.folder} onInput=${set("folder")} />
      <${Field} label=${t("mail-ca-file")} name="mail-ca-file" value=${form.caFile} onInput=${set("caFile")} />
    </div>
    <button data-test="mail-connect" type="submit" disabled=${busy}>${t("mail-connect")}</button>
  </form>`;
  // With a mailbox connected, another is one click away rather than always in view.
  return more ? html`<details class="more-mailboxes"><summary data-test="mail-connect-more">${t("mail-connect-another")}</summary>${form_}</details>` : form_;
}

function Summary({ report }) {
  if (!report) return null;
  return html`<div class="card" data-test="mail-summary">
    <p>
      ${t("mail-summary", {
        read: report.read,
        imported: report.imported.length,
        inbox: report.inbox,
        duplicates: report.duplicates,
        failed: report.failed.length,
      })}
    </p>
    <ul>
      ${report.imported.map(
        (m) => html`<li>${m.file_name || m.file} · ${t("mail-category-" + m.category)} <span class="muted">(${t("mail-basis-" + m.basis)})</span></li>`,
      )}
      ${report.failed.map((f) => html`<li class="warn">${t("mail-unreadable", { uid: f.uid })}: ${f.reason}</li>`)}
      ${report.uid_validity_changed.map((m) => html`<li class="muted">${t("mail-renumbered", { mailbox: m })}</li>`)}
      ${report.unreachable.map(([m, e]) => html`<li class="warn">${m}: ${e}</li>`)}
    </ul>
  </div>`;
}

function Inbox({ inbox, customers, fail, done }) {
  const [choice, setChoice] = useState({});
  if (!inbox.length) return html`<p class="muted" data-test="mail-inbox-empty">${t("mail-inbox-empty")}</p>`;
  const pick = (id, k, v) => setChoice({ ...choice, [id]: { ...(choice[id] || {}), [k]: v } });
  const assign = async (m) => {
    const c = choice[m.id] || {};
    if (!c.file) return fail(t("mail-pick-customer"));
    try {
      await invoke("mail_assign", { id: m.id, file: c.file, rule: c.rule || null });
      done();
    } catch (err) {
      fail(err);
    }
  };
  return html`<ul class="mail-inbox" data-test="mail-inbox">
    ${inbox.map(
      (m) => html`<li key=${m.id} class="card">
        <div><strong>${m.subject || t("mail-no-subject")}</strong> · ${m.from_name ? `${m.from_name} <${m.from}>` : m.from}</div>
        <div class="muted">${m.date_ms ? when(m.date_ms) : ""} · ${t("mail-category-" + m.category)} · ${t("mail-basis-" + m.basis)}</div>
        ${m.attachments.length ? html`<div class="muted">📎 ${m.attachments.join(", ")}</div>` : null}
        <div class="inline">
          <select data-test="mail-assign-file" onChange=${(e) => pick(m.id, "file", e.target.value)}>
            <option value="">${t("mail-pick-customer")}</option>
            ${customers.map((c) => html`<option value=${c.file}>${c.name}</option>`)}
          </select>
          <select data-test="mail-assign-rule" onChange=${(e) => pick(m.id, "rule", e.target.value)}>
            <option value="">${t("mail-rule-none")}</option>
            <option value="from">${t("mail-rule-from", { from: m.from })}</option>
            <option value="domain">${t("mail-rule-domain")}</option>
            <option value="subject">${t("mail-rule-subject")}</option>
          </select>
          <button data-test="mail-assign" onClick=${() => assign(m)}>${t("mail-assign")}</button>
        </div>
      </li>`,
    )}
  </ul>`;
}

/// The mail section: mailboxes, fetching, the inbox and the firm's rules.
export function Mail({ customers, version, fail, changed }) {
  const [boxes, setBoxes] = useState(null);
  const [inbox, setInbox] = useState([]);
  const [rules, setRules] = useState([]);
  const [report, setReport] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = () =>
    Promise.all([invoke("mail_boxes"), invoke("mail_inbox"), invoke("mail_rules")]).then(([b, i, r]) => {
      setBoxes(b);
      setInbox(i);
      setRules(r);
    }, fail);
  useEffect(() => {
    load();
  }, [version]);
  const fetchMail = async () => {
    setBusy(true);
    try {
      setReport(await invoke("mail_fetch"));
      changed();
      await load();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  const removeRule = (id) => invoke("mail_rule_remove", { id }).then(load, fail);
  if (!boxes) return html`<p class="muted">…</p>`;
  return html`<section class="mail">
    <h2>${t("mail-title")}</h2>
    ${boxes.length
      ? html`<div class="card" data-test="mail-boxes">
          ${boxes.map((b) => html`<div>${b.label} <span class="muted">${t("mail-password-in-" + (b.password_in === "keyring" ? "keyring" : "store"))}</span></div>`)}
          <button data-test="mail-fetch" onClick=${fetchMail} disabled=${busy}>${busy ? t("mail-fetching") : t("mail-fetch")}</button>
        </div>`
      : null}
    <${Connect} fail=${fail} done=${load} more=${boxes.length > 0} />
    <${Summary} report=${report} />
    <h3>${t("mail-inbox")}</h3>
    <${Inbox} inbox=${inbox} customers=${customers.filter((c) => c.kind !== "office")} fail=${fail} done=${() => { changed(); load(); }} />
    <h3>${t("mail-rules")}</h3>
    ${rules.length
      ? html`<ul data-test="mail-rules">
          ${rules.map(
            (r) => html`<li>${t("mail-rule-on-" + r.on)} „${r.pattern}” → ${r.file_name || "—"} ${r.category ? `· ${t("mail-category-" + r.category)}` : ""}
              <button class="link" onClick=${() => removeRule(r.id)}>${t("mail-rule-remove")}</button></li>`,
          )}
        </ul>`
      : html`<p class="muted">${t("mail-rules-none")}</p>`}
  </section>`;
}

/// A customer's mail tab.
export function CustomerMail({ file, version, fail }) {
  const [mails, setMails] = useState(null);
  useEffect(() => {
    invoke("mail_read", { file }).then(setMails, fail);
  }, [file, version]);
  if (!mails) return html`<p class="muted">…</p>`;
  if (!mails.length) return html`<p class="muted">${t("mail-none")}</p>`;
  return html`<ul class="mails" data-test="customer-mail">
    ${mails.map(
      (m) => html`<li key=${m.id} class="card">
        <details>
          <summary>
            <strong>${m.subject || t("mail-no-subject")}</strong> · ${m.from_name || m.from} ·
            <span class="muted">${when(m.date_ms)} · ${t("mail-category-" + m.category)}</span>
          </summary>
          <pre class="mail-text">${m.text}</pre>
          ${m.attachments.length ? html`<p class="muted">📎 ${m.attachments.map((a) => a[1]).join(", ")}</p>` : null}
          ${m.warnings.map((w) => html`<p class="muted">${w}</p>`)}
        </details>
      </li>`,
    )}
  </ul>`;
}
