// The office (admins): members and their devices, invitations and approval, who can open
// which customer file, revocation (the plan first, then its progress) and absence cover.
import { useEffect, useState } from "./vendor/hooks.module.js";
import { Bar, Field, dayOf, html, invoke, listen, t, today, when } from "./ui.js";

const short = (id) => String(id).slice(0, 8);

function Invite({ fail, changed }) {
  const [form, setForm] = useState({ name: "", role: "member" });
  const [code, setCode] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      setCode(await invoke("invite", form));
      changed();
    } catch (err) {
      fail(err);
    }
  };
  return html`<form class="card inline" onSubmit=${submit}>
    <${Field} label=${t("office-invite-name")} name="invite-name" value=${form.name} onInput=${(v) => setForm({ ...form, name: v })} />
    <label class="field">
      <span>${t("office-role")}</span>
      <select data-test="invite-role" value=${form.role} onChange=${(e) => setForm({ ...form, role: e.target.value })}>
        ${["member", "admin", "auditor"].map((r) => html`<option value=${r}>${t("role-" + r)}</option>`)}
      </select>
    </label>
    <button data-test="invite" type="submit">${t("office-invite")}</button>
    ${code ? html`<div class="code"><span class="muted">${t("office-invite-code")}</span> <code data-test="invite-code">${code}</code></div>` : null}
  </form>`;
}

function Approve({ invitations, fail, changed }) {
  const [form, setForm] = useState({ name: "", fingerprint: "" });
  const submit = async (e) => {
    e.preventDefault();
    try {
      await invoke("approve", form);
      setForm({ name: "", fingerprint: "" });
      changed();
    } catch (err) {
      fail(err);
    }
  };
  if (!invitations.length) return null;
  return html`<div class="card">
    <h3>${t("office-invitations")}</h3>
    <ul>
      ${invitations.map(
        (i) => html`<li>${i.name} · ${t("role-" + i.role)} · <span class="muted">${t("office-expires", { when: when(i.expires_ms) })}</span> <code>${i.code}</code></li>`,
      )}
    </ul>
    <form class="inline" onSubmit=${submit}>
      <${Field} label=${t("office-approve-name")} name="approve-name" value=${form.name} onInput=${(v) => setForm({ ...form, name: v })} />
      <${Field} label=${t("office-approve-fingerprint")} name="approve-fingerprint" value=${form.fingerprint} onInput=${(v) => setForm({ ...form, fingerprint: v })} />
      <button data-test="approve" type="submit">${t("office-approve")}</button>
    </form>
    <p class="muted">${t("office-approve-help")}</p>
  </div>`;
}

/// A rotation's two bars: member keys, then customer files (`revoke-progress` events).
function RotationBars({ name, progress }) {
  return html`<${Bar} name=${name + "-keys"} label=${t("revoke-progress-keys")} done=${progress.member_keys_done} total=${progress.member_keys_total} />
    <${Bar} name=${name + "-files"} label=${t("revoke-progress-files")} done=${progress.files_done} total=${progress.files_total} />`;
}

/// Revoking a member: what will be rotated, a confirmation, then the progress.
function Revoke({ member, fail, done }) {
  const [plan, setPlan] = useState(null);
  const [progress, setProgress] = useState(null);
  const [report, setReport] = useState(null);
  useEffect(() => {
    invoke("revoke_plan", { member: member.id }).then(setPlan, fail);
  }, [member.id]);
  useEffect(() => listen("revoke-progress", setProgress), []);
  const go = async () => {
    setProgress({ member_keys_done: 0, member_keys_total: plan.member_keys, files_done: 0, files_total: plan.files.length });
    try {
      setReport(await invoke("revoke", { member: member.id }));
    } catch (err) {
      fail(err);
    }
  };
  if (!plan) return null;
  const name = plan.name || short(member.id);
  return html`<div class="dialog" data-test="revoke-dialog" role="dialog">
    <h3>${t("revoke-title", { name })}</h3>
    <ul data-test="revoke-plan">
      <li>${t("revoke-plan-devices", { count: plan.devices.length })}</li>
      <li>${t("revoke-plan-keys", { count: plan.member_keys })}</li>
      <li>${t("revoke-plan-files", { count: plan.files.length })}
        <ul>${plan.files.map(([id, n]) => html`<li key=${id}>${n || short(id)}</li>`)}</ul>
      </li>
    </ul>
    ${progress ? html`<${RotationBars} name="revoke" progress=${progress} />` : null}
    ${report
      ? html`<p data-test="revoke-done">${t("revoke-done", { files: report.files, keys: report.member_keys })}</p>
          <button data-test="revoke-close" onClick=${done}>${t("dialog-close")}</button>`
      : progress
        ? null
        : html`<p class="warning">${t("revoke-warning")}</p>
            <button data-test="revoke-confirm" class="danger" onClick=${go}>${t("revoke-confirm", { name })}</button>
            <button class="secondary" onClick=${done}>${t("dialog-cancel")}</button>`}
  </div>`;
}

/// A lost or stolen laptop: its device is revoked, its member stays (with a new key).
function RevokeDevice({ what, fail, done }) {
  const [progress, setProgress] = useState(null);
  const [report, setReport] = useState(null);
  useEffect(() => listen("revoke-progress", setProgress), []);
  const go = async () => {
    setProgress({ member_keys_done: 0, member_keys_total: 1, files_done: 0, files_total: 0 });
    try {
      setReport(await invoke("revoke_device", { device: what.device.id }));
    } catch (err) {
      fail(err);
      done();
    }
  };
  const name = what.member.name || short(what.member.id);
  return html`<div class="dialog" data-test="revoke-device-dialog" role="dialog">
    <h3>${t("revoke-device-title", { device: short(what.device.id), name })}</h3>
    <p>${t("revoke-device-help", { name })}</p>
    ${progress ? html`<${RotationBars} name="revoke-device" progress=${progress} />` : null}
    ${report
      ? html`<p data-test="revoke-device-done">${t("revoke-done", { files: report.files, keys: report.member_keys })}</p>
          <button data-test="revoke-device-close" onClick=${done}>${t("dialog-close")}</button>`
      : progress
        ? null
        : html`<button data-test="revoke-device-confirm" class="danger" onClick=${go}>${t("office-revoke-device")}</button>
            <button class="secondary" onClick=${done}>${t("dialog-cancel")}</button>`}
  </div>`;
}

function Access({ office, fail, changed }) {
  const [pick, setPick] = useState({});
  const names = new Map(office.members.map((m) => [m.id, m.name || short(m.id)]));
  const teams = new Map(office.teams.map((tm) => [tm.id, tm.name]));
  const act = (cmd, args) => async () => {
    try {
      await invoke(cmd, args);
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const active = office.members.filter((m) => m.active && m.role !== "auditor");
  return html`<div class="card" data-test="file-access">
    <h3>${t("office-access")}</h3>
    <table class="grid">
      <tbody>
        ${office.files.map(
          (f) => html`<tr key=${f.id}>
            <td>${f.name || short(f.id)}</td>
            <td>
              ${f.teams.map(
                (id) => html`<span class="chip team" data-test="access-team">${t("office-access-team", { team: teams.get(id) || short(id) })}</span>`,
              )}
              ${f.members.map((m) =>
                f.granted.includes(m)
                  ? html`<span class="chip">${names.get(m) || short(m)}
                      ${office.admin ? html`<button class="link" title=${t("office-remove-access")} onClick=${act("remove_access", { file: f.id, member: m })}>×</button>` : null}</span>`
                  : html`<span class="chip via" data-test="access-via" title=${t("office-access-via")}>${names.get(m) || short(m)}</span>`,
              )}
            </td>
            <td>
              ${office.admin
                ? html`<select data-test="grant-member" value=${pick[f.id] || ""} onChange=${(e) => setPick({ ...pick, [f.id]: e.target.value })}>
                      <option value="">—</option>
                      ${active.filter((m) => !f.granted.includes(m.id)).map((m) => html`<option value=${m.id}>${names.get(m.id)}</option>`)}
                    </select>
                    <button data-test="grant" disabled=${!pick[f.id]} onClick=${act("grant", { file: f.id, member: pick[f.id] })}>${t("office-grant")}</button>`
                : null}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

/// Teams: who is in each and which customers it holds. Taking someone out rotates the
/// team's key and files (progress like a revocation's).
function Teams({ office, fail, changed }) {
  const [name, setName] = useState("");
  const [pick, setPick] = useState({});
  const [busy, setBusy] = useState(null);
  const names = new Map(office.members.map((m) => [m.id, m.name || short(m.id)]));
  const files = new Map(office.files.map((f) => [f.id, f.name || short(f.id)]));
  const staff = office.members.filter((m) => m.active && m.role !== "auditor");
  const act = (cmd, args, key) => async () => {
    setBusy(key || null);
    try {
      await invoke(cmd, args);
      changed();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(null);
    }
  };
  const create = async (e) => {
    e.preventDefault();
    try {
      await invoke("team_create", { name });
      setName("");
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const chooser = (kind, team, options) => html`<select data-test=${"team-" + kind} value=${pick[team + kind] || ""} onChange=${(e) => setPick({ ...pick, [team + kind]: e.target.value })}>
    <option value="">—</option>
    ${options.map(([id, label]) => html`<option value=${id}>${label}</option>`)}
  </select>`;
  return html`<div class="card" data-test="teams">
    <h3>${t("office-teams")}</h3>
    <p class="muted">${t("office-teams-help")}</p>
    <table class="grid">
      <tbody>
        ${office.teams.map(
          (tm) => html`<tr key=${tm.id} data-team=${tm.name || tm.id}>
            <td><b>${tm.name || short(tm.id)}</b></td>
            <td>
              <span data-test="team-members">${tm.members.map(
                (m) => html`<span class="chip">${names.get(m) || short(m)}
                  ${office.admin
                    ? html`<button class="link" data-test="team-remove" title=${t("office-team-remove")} disabled=${busy === tm.id + m} onClick=${act("team_remove", { team: tm.id, member: m }, tm.id + m)}>×</button>`
                    : null}</span>`,
              )}</span>
              ${office.admin
                ? html`${chooser("member", tm.id, staff.filter((m) => !tm.members.includes(m.id)).map((m) => [m.id, names.get(m.id)]))}
                    <button data-test="team-add" disabled=${!pick[tm.id + "member"]} onClick=${act("team_add", { team: tm.id, member: pick[tm.id + "member"] })}>${t("office-team-add")}</button>`
                : null}
            </td>
            <td>
              <span data-test="team-files">${tm.files.map((f) => html`<span class="chip">${files.get(f) || short(f)}</span>`)}</span>
              ${office.admin
                ? html`${chooser("file", tm.id, office.files.filter((f) => !tm.files.includes(f.id)).map((f) => [f.id, files.get(f.id)]))}
                    <button data-test="team-grant" disabled=${!pick[tm.id + "file"]} onClick=${act("team_grant", { team: tm.id, file: pick[tm.id + "file"] })}>${t("office-grant")}</button>`
                : null}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${office.admin
      ? html`<form class="inline" onSubmit=${create}>
          <${Field} label=${t("office-team-name")} name="team-name" value=${name} onInput=${setName} />
          <button data-test="team-create" type="submit">${t("office-team-create")}</button>
        </form>`
      : null}
  </div>`;
}

function Covers({ office, fail, changed }) {
  const [form, setForm] = useState({ absent: "", colleague: "", from: today(), until: today() });
  const members = office.members.filter((m) => m.active && m.role !== "auditor");
  const submit = async (e) => {
    e.preventDefault();
    try {
      await invoke("cover_grant", form);
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const end = async (id) => {
    try {
      await invoke("cover_end", { id });
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const pickMember = (k) => html`<select data-test=${"cover-" + k} value=${form[k]} onChange=${(e) => setForm({ ...form, [k]: e.target.value })}>
    <option value="">—</option>
    ${members.map((m) => html`<option value=${m.id}>${m.name || short(m.id)}</option>`)}
  </select>`;
  return html`<div class="card" data-test="covers">
    <h3>${t("office-covers")}</h3>
    <ul>
      ${office.covers.map(
        (c) => html`<li key=${c.id}>
          ${t("office-cover-line", { absent: c.absent_name || short(c.absent), colleague: c.colleague_name || short(c.colleague), from: dayOf(c.from_ms), until: dayOf(c.until_ms - 1) })}
          <span class="muted"> · ${t("cover-state-" + c.state)}</span>
          ${office.admin && (c.state === "active" || c.state === "planned" || c.state === "expired")
            ? html` <button class="link" data-test="cover-end" onClick=${() => end(c.id)}>${t("office-cover-end")}</button>`
            : null}
        </li>`,
      )}
    </ul>
    ${office.admin
      ? html`<form class="inline" onSubmit=${submit}>
          <label class="field"><span>${t("office-cover-absent")}</span>${pickMember("absent")}</label>
          <label class="field"><span>${t("office-cover-colleague")}</span>${pickMember("colleague")}</label>
          <${Field} label=${t("office-cover-from")} name="cover-from" type="date" value=${form.from} onInput=${(v) => setForm({ ...form, from: v })} />
          <${Field} label=${t("office-cover-until")} name="cover-until" type="date" value=${form.until} onInput=${(v) => setForm({ ...form, until: v })} />
          <button data-test="cover-grant" type="submit">${t("office-cover-grant")}</button>
        </form>`
      : null}
  </div>`;
}

export function Office({ version, fail, changed }) {
  const [office, setOffice] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const [losing, setLosing] = useState(null);
  useEffect(() => {
    invoke("office").then(setOffice, fail);
  }, [version]);
  if (!office) return html`<p class="muted">…</p>`;
  return html`<section class="office" data-test="office">
    <h2>${t("nav-office")}</h2>
    ${office.rotation_pending ? html`<p class="warning">${t("office-rotation-pending")}</p>` : null}
    ${office.admin ? html`<${Invite} fail=${fail} changed=${changed} />` : null}
    ${office.admin ? html`<${Approve} invitations=${office.invitations} fail=${fail} changed=${changed} />` : null}
    <div class="card">
      <h3>${t("office-members")}</h3>
      <table class="grid" data-test="members">
        <thead>
          <tr><th>${t("office-member")}</th><th>${t("office-role")}</th><th>${t("office-fingerprint")}</th><th>${t("office-devices")}</th><th>${t("office-files")}</th><th></th></tr>
        </thead>
        <tbody>
          ${office.members.map(
            (m) => html`<tr key=${m.id} data-member=${m.name || m.id} class=${m.active ? "" : "gone"}>
              <td>${m.name || short(m.id)}${m.me ? html` <small>(${t("office-you")})</small>` : null}</td>
              <td>${t("role-" + m.role)}${m.active ? "" : html` · <span data-test="revoked">${t("office-revoked")}</span>`}</td>
              <td><code>${m.fingerprint}</code></td>
              <td>
                ${m.devices.map(
                  (d) => html`<span class="chip"><code class=${d.active ? "" : "gone"} title=${d.id}>${short(d.id)}</code>${d.me ? html` <small>(${t("office-this-device")})</small>` : null}
                    ${office.admin && d.active && !d.me && m.active
                      ? html`<button class="link" data-test="revoke-device" title=${t("office-revoke-device")} onClick=${() => setLosing({ member: m, device: d })}>×</button>`
                      : null}</span> `,
                )}
              </td>
              <td>${m.files}</td>
              <td>
                ${office.admin && m.active && !m.me
                  ? html`<button class="danger" data-test="revoke" onClick=${() => setRevoking(m)}>${t("office-revoke")}</button>`
                  : null}
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <${Access} office=${office} fail=${fail} changed=${changed} />
    <${Teams} office=${office} fail=${fail} changed=${changed} />
    <${Covers} office=${office} fail=${fail} changed=${changed} />
    ${losing
      ? html`<${RevokeDevice} what=${losing} fail=${fail} done=${() => {
          setLosing(null);
          changed();
        }} />`
      : null}
    ${revoking
      ? html`<${Revoke} member=${revoking} fail=${fail} done=${() => {
          setRevoking(null);
          changed();
        }} />`
      : null}
  </section>`;
}
