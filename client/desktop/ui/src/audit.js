// The access log: the owner exports a bundle for an auditor; an auditor verifies one
// offline and reads who did what when, with filters.
import { useEffect, useState } from "./vendor/hooks.module.js";
import { Field, has, html, invoke, t } from "./ui.js";

function Export({ fail, members }) {
  const [form, setForm] = useState({ out: "", from: "", to: "", auditor: "" });
  const [done, setDone] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      setDone(await invoke("audit_export", { out: form.out, from: form.from || null, to: form.to || null, auditor: form.auditor || null }));
    } catch (err) {
      fail(err);
    }
  };
  const auditors = (members || []).filter((m) => m.role === "auditor" && m.active);
  return html`<form class="card" onSubmit=${submit}>
    <h3>${t("audit-export")}</h3>
    <div class="inline">
      <${Field} label=${t("audit-out")} name="audit-out" value=${form.out} placeholder="/home/…/audyt.jsonl" onInput=${(v) => setForm({ ...form, out: v })} />
      <button type="button" class="secondary" onClick=${async () => {
        const out = await invoke("choose_save", { name: `audyt-${new Date().toISOString().slice(0, 10)}.jsonl` }).catch(fail);
        if (out) setForm({ ...form, out });
      }}>${t("choose")}</button>
    </div>
    <div class="inline">
      <${Field} label=${t("audit-from")} name="audit-from" type="date" value=${form.from} onInput=${(v) => setForm({ ...form, from: v })} />
      <${Field} label=${t("audit-to")} name="audit-to" type="date" value=${form.to} onInput=${(v) => setForm({ ...form, to: v })} />
      <label class="field">
        <span>${t("audit-for")}</span>
        <select data-test="audit-auditor" value=${form.auditor} onChange=${(e) => setForm({ ...form, auditor: e.target.value })}>
          <option value="">${t("audit-no-names")}</option>
          ${auditors.map((m) => html`<option value=${m.id}>${m.name || m.id}</option>`)}
        </select>
      </label>
    </div>
    <button data-test="audit-export" type="submit">${t("audit-export-submit")}</button>
    ${done ? html`<p data-test="audit-exported">${t("audit-exported", { entries: done.size, checkpoints: done.checkpoints })}</p>` : null}
  </form>`;
}

/// The verifier's words for an action, in the window's language where the catalog has
/// them (an action it does not know stays as the verifier wrote it: `METHOD path`).
const actionWords = (action) => {
  const id = "audit-action-" + action.toLowerCase().replace(/[^a-z]+/g, "-").replace(/^-|-$/g, "");
  return has(id) ? t(id) : action;
};

function Verify({ fail }) {
  const [path, setPath] = useState("");
  const [report, setReport] = useState(null);
  const [busy, setBusy] = useState(false);
  const [filter, setFilter] = useState({ who: "", what: "", from: "", to: "" });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setReport(null);
    try {
      setReport(await invoke("audit_verify", { path }));
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  const matches = (text, needle) => !needle || text.toLowerCase().includes(needle.toLowerCase());
  const rows = report
    ? report.rows.filter(
        (r) =>
          matches(r.who, filter.who) &&
          matches(`${r.action} ${actionWords(r.action)} ${r.subjects_named.join(" ")}`, filter.what) &&
          (!filter.from || r.time.slice(0, 10) >= filter.from) &&
          (!filter.to || r.time.slice(0, 10) <= filter.to),
      )
    : [];
  const s = report && report.summary;
  return html`<div class="card">
    <h3>${t("audit-verify")}</h3>
    <form class="inline" onSubmit=${submit}>
      <${Field} label=${t("audit-bundle")} name="audit-bundle" value=${path} onInput=${setPath} />
      <button type="button" class="secondary" onClick=${async () => {
        const picked = await invoke("choose_files").catch(fail);
        if (picked && picked.length) setPath(picked[0]);
      }}>${t("choose")}</button>
      <button data-test="audit-verify" type="submit" disabled=${busy}>${busy ? t("onboarding-working") : t("audit-verify-submit")}</button>
    </form>
    ${s
      ? html`<p class="ok" data-test="audit-verified">
            ${t("audit-verified", { size: s.size, entries: s.entries, checkpoints: s.checkpoints, roster: s.roster_events })}
            ${report.ended.map((r) => html`<br /><span data-test="audit-ended">${t("audit-rotation", { what: t(`audit-ended-${r.kind}`, r), at: r.at, files: r.files, keys: r.keys })}</span>`)}
          </p>
          <div class="inline filters">
            <${Field} label=${t("audit-filter-who")} name="filter-who" value=${filter.who} onInput=${(v) => setFilter({ ...filter, who: v })} />
            <${Field} label=${t("audit-filter-what")} name="filter-what" value=${filter.what} onInput=${(v) => setFilter({ ...filter, what: v })} />
            <${Field} label=${t("audit-from")} name="filter-from" type="date" value=${filter.from} onInput=${(v) => setFilter({ ...filter, from: v })} />
            <${Field} label=${t("audit-to")} name="filter-to" type="date" value=${filter.to} onInput=${(v) => setFilter({ ...filter, to: v })} />
          </div>
          <p class="muted" data-test="audit-count">${t("audit-rows", { shown: rows.length, total: report.rows.length })}</p>
          <table class="grid report" data-test="audit-report">
            <thead>
              <tr><th>#</th><th>${t("audit-col-time")}</th><th>${t("audit-col-who")}</th><th>${t("audit-col-what")}</th><th>${t("audit-col-subjects")}</th></tr>
            </thead>
            <tbody>
              ${rows.slice(0, 2000).map(
                (r) => html`<tr key=${r.index}>
                  <td>${r.index}</td>
                  <td>${r.time}</td>
                  <td>${r.who}</td>
                  <td>${actionWords(r.action)}</td>
                  <td>${r.subjects_named.join("; ")}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
      : null}
  </div>`;
}

export function Audit({ fail }) {
  const [members, setMembers] = useState([]);
  useEffect(() => {
    invoke("office").then((o) => setMembers(o.members), fail);
  }, []);
  return html`<section class="audit" data-test="audit">
    <h2>${t("nav-audit")}</h2>
    <${Export} fail=${fail} members=${members} />
    <${Verify} fail=${fail} />
  </section>`;
}
