// The office's work across customers: the task board, the calendar, leads, search.
import { useEffect, useState } from "./vendor/hooks.module.js";
import { Field, addDays, dayName, html, invoke, monthName, t, today } from "./ui.js";

/// A task's badges: delegated, rolling, recurring — visible at a glance.
function Badges({ task }) {
  return html`<span class="badges">
    ${task.delegation ? html`<span class="badge" title=${t("board-delegated")}>⇢ ${t("board-delegated")}</span>` : null}
    ${task.rolling ? html`<span class="badge" title=${t("board-rolling")}>⟳ ${t("board-rolling")}${task.rolled_days ? ` +${task.rolled_days}` : ""}</span>` : null}
    ${task.rrule ? html`<span class="badge" title=${task.rrule}>↻ ${t("board-recurring")}</span>` : null}
  </span>`;
}

export function Board({ version, fail, changed, open }) {
  const [tasks, setTasks] = useState(null);
  useEffect(() => {
    invoke("board").then(setTasks, fail);
  }, [version]);
  const done = async (k) => {
    try {
      await invoke("task_done", { task: k.id });
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const columns = [
    ["open", (k) => k.status === "open" && k.delegation !== "pending"],
    ["delegated", (k) => k.status === "open" && k.delegation === "pending"],
    ["done", (k) => k.status === "done"],
  ];
  return html`<section class="board" data-test="board">
    <h2>${t("nav-board")}</h2>
    <div class="columns">
      ${columns.map(
        ([name, keep]) => html`<div class="column" data-test=${"column-" + name}>
          <h3>${t("board-column-" + name)}</h3>
          ${(tasks || []).filter(keep).map(
            (k) => html`<div class="task-card" key=${k.id}>
              <div class="title">${k.title}</div>
              <div class="muted">
                <button class="link" onClick=${() => open(k.file)}>${k.file_name || ""}</button>
                ${k.due ? html` · ${t("task-due")}: ${k.due}` : null}
              </div>
              <${Badges} task=${k} />
              ${k.status === "open" ? html`<button data-test="task-done" onClick=${() => done(k)}>${t("board-mark-done")}</button>` : null}
            </div>`,
          )}
        </div>`,
      )}
    </div>
  </section>`;
}

/// Monday of the week holding `iso`.
const monday = (iso) => addDays(iso, -((new Date(iso + "T12:00:00Z").getUTCDay() + 6) % 7));

export function Calendar({ version, fail }) {
  const [view, setView] = useState("month");
  const [anchor, setAnchor] = useState(today());
  const [items, setItems] = useState([]);
  // The days shown: whole weeks covering the month, or one week.
  const first = view === "month" ? monday(anchor.slice(0, 8) + "01") : monday(anchor);
  let days = 7;
  if (view === "month") {
    const next = addDays(anchor.slice(0, 8) + "28", 4).slice(0, 8) + "01";
    while (addDays(first, days) < next) days += 7;
  }
  const last = addDays(first, days - 1);
  useEffect(() => {
    invoke("agenda", { from: first, to: last }).then(setItems, fail);
  }, [first, last, version]);
  const move = (sign) =>
    setAnchor(view === "month" ? addDays(anchor.slice(0, 8) + "15", sign * 30).slice(0, 8) + "01" : addDays(anchor, sign * 7));
  const month = anchor.slice(0, 7);
  const now = today();
  return html`<section class="calendar" data-test="calendar">
    <header class="inline">
      <h2 data-test="calendar-title">${view === "month" ? monthName(anchor) : `${dayName(first)} – ${dayName(last)}`}</h2>
      <button data-test="calendar-prev" onClick=${() => move(-1)}>‹</button>
      <button data-test="calendar-today" onClick=${() => setAnchor(today())}>${t("calendar-today")}</button>
      <button data-test="calendar-next" onClick=${() => move(1)}>›</button>
      <div class="tabs">
        ${["month", "week"].map(
          (v) => html`<button data-test=${"calendar-" + v} class=${view === v ? "on" : ""} onClick=${() => setView(v)}>${t("calendar-" + v)}</button>`,
        )}
      </div>
    </header>
    <div class=${"days " + view}>
      ${Array.from({ length: days }, (_, i) => addDays(first, i)).map(
        (d) => html`<div key=${d} data-day=${d} class=${"day" + (d.slice(0, 7) !== month && view === "month" ? " other" : "") + (d === now ? " today" : "")}>
          <div class="date">${view === "month" ? Number(d.slice(8)) : dayName(d)}</div>
          ${items
            .filter((i) => i.date === d)
            .map(
              (i) => html`<div class=${"entry " + i.kind} title=${i.file_name || ""}>
                ${i.time ? html`<span class="muted">${i.time}</span> ` : null}${i.title}
              </div>`,
            )}
        </div>`,
      )}
    </div>
  </section>`;
}

const STAGES = ["new", "contacted", "offer", "won", "lost"];

export function Leads({ customers, fail, changed, open }) {
  const [form, setForm] = useState({ name: "", nip: "" });
  const leads = customers.filter((c) => c.kind === "lead");
  const add = async (e) => {
    e.preventDefault();
    try {
      await invoke("lead_add", { name: form.name, nip: form.nip || null });
      setForm({ name: "", nip: "" });
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const act = (cmd, args) => async () => {
    try {
      await invoke(cmd, args);
      changed();
    } catch (err) {
      fail(err);
    }
  };
  return html`<section class="leads" data-test="leads">
    <h2>${t("nav-leads")}</h2>
    <form class="inline" onSubmit=${add}>
      <${Field} label=${t("customer-name")} name="lead-name" value=${form.name} onInput=${(v) => setForm({ ...form, name: v })} />
      <${Field} label=${t("customer-nip")} name="lead-nip" value=${form.nip} onInput=${(v) => setForm({ ...form, nip: v })} />
      <button data-test="lead-add" type="submit">${t("lead-add-submit")}</button>
    </form>
    ${leads.length ? null : html`<p class="muted">${t("lead-none")}</p>`}
    <table class="grid">
      <tbody>
        ${leads.map(
          (l) => html`<tr key=${l.file}>
            <td><button class="link" onClick=${() => open(l.file)}>${l.name}</button></td>
            <td>
              <select data-test="lead-stage" value=${l.stage || "new"} onChange=${(e) => act("lead_stage", { file: l.file, stage: e.target.value })()}>
                ${STAGES.map((s) => html`<option value=${s}>${t("lead-stage-" + s)}</option>`)}
              </select>
            </td>
            <td><button data-test="lead-convert" onClick=${act("lead_convert", { file: l.file })}>${t("lead-convert")}</button></td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

export function SearchResults({ query, fail, open }) {
  const [hits, setHits] = useState(null);
  useEffect(() => {
    const q = query;
    const timer = setTimeout(() => invoke("search", { query: q }).then(setHits, fail), 150);
    return () => clearTimeout(timer);
  }, [query]);
  if (!hits) return null;
  return html`<section class="search-results" data-test="search-results">
    <h2>${t("search-title", { query })}</h2>
    ${hits.length ? null : html`<p class="muted">${t("search-none")}</p>`}
    <ul>
      ${hits.map(
        (h) => html`<li>
          <span class="kind">${t("search-kind-" + h.kind)}</span>
          ${h.file ? html`<button class="link" onClick=${() => open(h.file)}>${h.file_name}</button> · ` : null}
          <span>${h.body}</span>
        </li>`,
      )}
    </ul>
  </section>`;
}
