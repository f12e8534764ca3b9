// KSeF intake (protocol-spec/ksef.md): a customer's e-invoices fetched from KSeF on this
// device with the customer's token, kept encrypted in its file. The tab sets the token
// (checked by logging in; kept in the file, never shown again), fetches, and lists the
// invoices with what is wrong with any of them.
import { useEffect, useState } from "./vendor/hooks.module.js";
import { Field, amount, html, invoke, t } from "./ui.js";

function TokenForm({ file, settings, fail, done }) {
  const [form, setForm] = useState({ token: "", nip: "", environment: settings?.environment || "prod", since: "" });
  const [busy, setBusy] = useState(false);
  const set = (k) => (v) => setForm({ ...form, [k]: v });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await invoke("ksef_token_set", {
        file,
        token: form.token,
        nip: form.nip || null,
        environment: form.environment,
        since: form.since || null,
      });
      setForm({ ...form, token: "" });
      done();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card" data-test="ksef-token-form" onSubmit=${submit}>
    <h3>${settings ? t("ksef-token-change") : t("ksef-token-title")}</h3>
    <p class="muted">${t("ksef-token-help")}</p>
    <div class="inline">
      <${Field} label=${t("ksef-token")} name="ksef-token" type="password" value=${form.token} onInput=${set("token")} />
      <${Field} label=${t("ksef-nip")} name="ksef-nip" value=${form.nip} onInput=${set("nip")} placeholder=${t("ksef-nip-card")} />
      <label class="field">
        <span>${t("ksef-environment")}</span>
        <select data-test="ksef-environment" value=${form.environment} onChange=${(e) => set("environment")(e.target.value)}>
          ${["prod", "demo", "test"].map((v) => html`<option value=${v}>${t("ksef-env-" + v)}</option>`)}
        </select>
      </label>
      <${Field} label=${t("ksef-since")} name="ksef-since" type="date" value=${form.since} onInput=${set("since")} />
    </div>
    <button data-test="ksef-token-save" type="submit" disabled=${busy || !form.token}>${busy ? t("ksef-checking") : t("ksef-token-save")}</button>
  </form>`;
}

function Summary({ report }) {
  if (!report) return null;
  return html`<div class="card" data-test="ksef-summary">
    <p>${t("ksef-summary", { sales: report.sales, purchases: report.purchases, known: report.known, tasks: report.tasks })}</p>
    ${report.warnings.map(([n, w]) => html`<p class="warning">⚠ ${n}: ${w}</p>`)}
    ${report.stopped ? html`<p class="warning">${t("ksef-stopped", { reason: report.stopped })}</p>` : null}
  </div>`;
}

export function CustomerInvoices({ file, version, fail }) {
  const [settings, setSettings] = useState(undefined);
  const [invoices, setInvoices] = useState(null);
  const [report, setReport] = useState(null);
  const [busy, setBusy] = useState(false);
  const [editing, setEditing] = useState(false);
  const load = () => {
    invoke("ksef_settings", { file }).then(setSettings, fail);
    invoke("ksef_invoices", { file }).then(setInvoices, fail);
  };
  useEffect(load, [file, version]);
  const fetchInvoices = async () => {
    setBusy(true);
    try {
      setReport(await invoke("ksef_sync", { file }));
      load();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  if (settings === undefined || !invoices) return html`<p class="muted">…</p>`;
  return html`<section class="ksef">
    ${settings
      ? html`<div class="card" data-test="ksef-settings">
          <p>${t("ksef-settings", { nip: settings.nip, environment: t("ksef-env-" + settings.environment), since: settings.since })}</p>
          <button data-test="ksef-sync" onClick=${fetchInvoices} disabled=${busy}>${busy ? t("ksef-syncing") : t("ksef-sync")}</button>
          <button class="secondary" data-test="ksef-token-edit" onClick=${() => setEditing(!editing)}>${t("ksef-token-change")}</button>
        </div>`
      : null}
    ${!settings || editing ? html`<${TokenForm} file=${file} settings=${settings} fail=${fail} done=${() => { setEditing(false); load(); }} />` : null}
    <${Summary} report=${report} />
    ${invoices.length
      ? html`<div class="scroll"><table class="invoices" data-test="ksef-invoices">
          <thead><tr>
            <th>${t("ksef-col-issued")}</th><th>${t("ksef-col-direction")}</th><th>${t("ksef-col-number")}</th>
            <th>${t("ksef-col-party")}</th><th class="num">${t("ksef-col-net")}</th><th class="num">${t("ksef-col-vat")}</th>
            <th class="num">${t("ksef-col-gross")}</th><th>${t("ksef-col-due")}</th>
          </tr></thead>
          <tbody>
            ${invoices.map((v) => {
              const i = v.invoice;
              const party = i ? (v.direction === "sales" ? i.buyer.name : i.seller.name) : "";
              return html`<tr key=${v.id} title=${v.ksef_number}>
                <td>${i ? i.issued : "—"}</td>
                <td>${t("invoice-direction-" + v.direction)}</td>
                <td>${i ? i.number : t("ksef-unreadable")}</td>
                <td>${party}</td>
                <td class="num">${i ? amount(i.net, i.currency) : ""}</td>
                <td class="num">${i ? amount(i.vat, i.currency) : ""}</td>
                <td class="num">${i ? amount(i.gross, i.currency) : ""}</td>
                <td>${i && i.due.length ? i.due[0] : ""}</td>
              </tr>
              ${v.warnings.map((w) => html`<tr class="warning"><td colspan="8">⚠ ${w}</td></tr>`)}`;
            })}
          </tbody>
        </table></div>`
      : html`<p class="muted" data-test="ksef-none">${t("ksef-none")}</p>`}
  </section>`;
}
