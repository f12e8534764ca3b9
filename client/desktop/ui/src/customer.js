// A customer: everything about them in one place (timeline, chat, documents, tasks).
import { useEffect, useRef, useState } from "./vendor/hooks.module.js";
import { Bar, Field, addDays, bytes, errorWords, html, invoke, listen, money, t, today, when } from "./ui.js";
import { CustomerInvoices } from "./ksef.js";
import { CustomerMail } from "./mail.js";

function Timeline({ file, version, fail, changed }) {
  const [items, setItems] = useState(null);
  const [note, setNote] = useState("");
  useEffect(() => {
    invoke("timeline", { file }).then(setItems, () => setItems([]));
  }, [file, version]);
  const add = async (e) => {
    e.preventDefault();
    try {
      await invoke("note_add", { file, text: note });
      setNote("");
      changed();
    } catch (err) {
      fail(err);
    }
  };
  if (!items) return null;
  return html`<form class="composer note" onSubmit=${add}>
      <input data-test="note-input" value=${note} placeholder=${t("note-placeholder")} onInput=${(e) => setNote(e.target.value)} />
      <button data-test="note-add" type="submit">${t("note-add")}</button>
    </form>
    ${items.length ? null : html`<p class="muted">${t("timeline-empty")}</p>`}
    <ol class="timeline" data-test="timeline">
    ${items
      .slice()
      .reverse()
      .map(
        (i) => html`<li key=${i.cursor} class=${"kind-" + i.kind}>
          <span class="when">${when(i.at_ms)}</span>
          <span class="kind">${t("timeline-kind-" + i.kind)}</span>
          <span class="text">${i.title}</span>
          ${i.status
            ? html`<span class="status">${t(i.kind === "offer" ? "offer-status-" + i.status : i.kind === "mail" ? "mail-category-" + i.status : i.kind === "invoice" ? "invoice-direction-" + i.status : i.status === "done" ? "task-done" : "task-open")}</span>`
            : null}
        </li>`,
      )}
  </ol>`;
}

function Chat({ file, version, fail, changed, me }) {
  const [messages, setMessages] = useState(null);
  const [text, setText] = useState("");
  const [transfers, run] = useTransfers(fail);
  // A file dropped on the chat: encrypted into the customer's documents and attached here.
  const over = useDrop(async (paths) => {
    for (const path of paths) {
      if (await run("att", baseName(path), "chat_attach", { file, path }, () => t("doc-uploaded"))) changed();
    }
  });
  const fetchDoc = (m) =>
    run("get", m.body, "doc_download", { file, document: m.attachment }, (where) => t("doc-saved", { path: where }));
  // What the composer does: a new message, a reply to `seq`, or an edit of `seq`.
  const [mode, setMode] = useState({ kind: "new" });
  useEffect(() => {
    invoke("chat_read", { file }).then(setMessages, fail);
  }, [file, version]);
  const bySeq = new Map((messages || []).map((m) => [m.seq, m]));
  const send = async (e) => {
    e.preventDefault();
    if (!text.trim()) return;
    try {
      if (mode.kind === "edit") await invoke("chat_edit", { file, target: mode.seq, text });
      else await invoke("chat_send", { file, text, replyTo: mode.kind === "reply" ? mode.seq : null });
      setText("");
      setMode({ kind: "new" });
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const remove = async (seq) => {
    try {
      await invoke("chat_delete", { file, target: seq });
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const quote = (seq) => {
    const m = bySeq.get(seq);
    return m && m.body ? m.body.slice(0, 80) : "…";
  };
  return html`<div class=${"chat" + (over ? " over" : "")}>
    ${messages && !messages.length ? html`<p class="muted">${t("chat-empty")}</p>` : null}
    <ol class="messages" data-test="messages">
      ${(messages || []).map(
        (m) => html`<li key=${m.seq} data-seq=${m.seq}>
          <span class="who">${m.name || ""}</span>
          <span class="when">${when(m.created_ms)}</span>
          ${m.edited ? html`<span class="muted">${t("chat-edited")}</span>` : null}
          ${m.reply_to != null ? html`<div class="quote">↪ ${quote(m.reply_to)}</div>` : null}
          <div class="body">
            ${m.deleted
              ? t("chat-deleted")
              : m.waiting_for_key
                ? t("chat-waiting")
                : m.attachment
                  ? html`<span class="attachment" data-test="attachment">📎 ${m.body}</span>
                      <button class="link" data-test="attachment-download" onClick=${() => fetchDoc(m)}>${t("doc-download")}</button>`
                  : m.body}
          </div>
          ${m.deleted || m.waiting_for_key
            ? null
            : html`<div class="actions">
                <button class="link" data-test="reply" onClick=${() => setMode({ kind: "reply", seq: m.seq })}>${t("chat-reply")}</button>
                ${m.member === me && !m.attachment
                  ? html`<button class="link" data-test="edit" onClick=${() => {
                        setMode({ kind: "edit", seq: m.seq });
                        setText(m.body || "");
                      }}>${t("chat-edit")}</button>
                      <button class="link" data-test="delete" onClick=${() => remove(m.seq)}>${t("chat-delete")}</button>`
                  : null}
              </div>`}
        </li>`,
      )}
    </ol>
    ${mode.kind !== "new"
      ? html`<div class="replying" data-test="composer-mode">
          ${t(mode.kind === "edit" ? "chat-editing" : "chat-replying")}: ${quote(mode.seq)}
          <button class="link" onClick=${() => {
            setMode({ kind: "new" });
            setText("");
          }}>×</button>
        </div>`
      : null}
    <${Transfers} name="chat-transfers" transfers=${transfers} />
    <p class="muted hint">${t("chat-drop-hint")}</p>
    <${TemplatePicker} file=${file} fail=${fail} onText=${setText} />
    <form class="composer" onSubmit=${send}>
      <input data-test="chat-input" value=${text} placeholder=${t("chat-placeholder")} onInput=${(e) => setText(e.target.value)} />
      <button data-test="chat-send" type="submit">${t("chat-send")}</button>
    </form>
  </div>`;
}

/// A reply template filled for this customer, put into the composer to read (and change)
/// before sending. Asks for a deadline or an amount only when the template has them.
function TemplatePicker({ file, fail, onText }) {
  const [all, setAll] = useState([]);
  const [pick, setPick] = useState("");
  const [deadline, setDeadline] = useState("");
  const [amount, setAmount] = useState("");
  useEffect(() => {
    invoke("reply_templates").then(setAll, fail);
  }, [file]);
  if (!all.length) return null;
  const chosen = all.find((x) => x.name === pick);
  const needs = (re) => !!chosen && re.test(chosen.body);
  const insert = async () => {
    try {
      onText(await invoke("reply_render", { name: pick, file, deadline: deadline || null, amount: amount || null }));
    } catch (err) {
      fail(err);
    }
  };
  return html`<div class="templates" data-test="templates">
    <select data-test="template-pick" value=${pick} onChange=${(e) => setPick(e.target.value)}>
      <option value="">${t("reply-pick")}</option>
      ${all.map((x) => html`<option value=${x.name}>${x.personal ? "★ " : ""}${x.name}</option>`)}
    </select>
    ${needs(/\{(termin|deadline)\}/)
      ? html`<input type="date" data-test="template-deadline" title=${t("reply-deadline")} value=${deadline} onInput=${(e) => setDeadline(e.target.value)} />`
      : null}
    ${needs(/\{(kwota|amount)\}/)
      ? html`<input data-test="template-amount" placeholder=${t("reply-amount")} value=${amount} onInput=${(e) => setAmount(e.target.value)} />`
      : null}
    <button type="button" data-test="template-insert" disabled=${!pick} onClick=${insert}>${t("reply-insert")}</button>
  </div>`;
}

/// Transfers in flight, by token, fed by the `doc-progress` events. `run(prefix, label,
/// command, args, said)` invokes a transfer command under a new token and records how it
/// ended (`said(answer)` on success); it resolves to whether it succeeded.
function useTransfers(fail) {
  const [transfers, setTransfers] = useState({});
  useEffect(
    () =>
      listen("doc-progress", (p) =>
        setTransfers((all) => (all[p.token] ? { ...all, [p.token]: { ...all[p.token], ...p } } : all)),
      ),
    [],
  );
  const end = (token, result) => setTransfers((all) => ({ ...all, [token]: { ...all[token], result, finished: true } }));
  const run = async (prefix, label, command, args, said) => {
    const token = `${prefix}-${++transferCount}`;
    setTransfers((all) => ({ ...all, [token]: { label, done: 0, total: 0, phase: "" } }));
    try {
      end(token, said(await invoke(command, { ...args, token })));
      return true;
    } catch (err) {
      end(token, errorWords(err).text);
      fail(err);
      return false;
    }
  };
  return [transfers, run];
}

/// The bars of `transfers`, each with how it ended.
function Transfers({ name, transfers }) {
  return html`<div class="transfers" data-test=${name}>
    ${Object.entries(transfers).map(
      ([token, x]) => html`<div key=${token} class="transfer">
        <${Bar} name=${"progress-" + token} label=${x.label} done=${x.finished && !x.total ? 1 : x.done} total=${x.finished && !x.total ? 1 : x.total} />
        ${x.result ? html`<span class="muted" data-test=${"result-" + token}>${x.result}</span>` : null}
      </div>`,
    )}
  </div>`;
}

/// Files dropped on the window go to `onPaths` (Tauri gives their paths; the web view
/// never reads them); returns whether a drag is over the window. The latest `onPaths`
/// is called, so it sees the current render's state.
function useDrop(onPaths) {
  const [over, setOver] = useState(false);
  const handler = useRef(onPaths);
  handler.current = onPaths;
  useEffect(() => {
    const stops = [
      listen("tauri://drag-enter", () => setOver(true)),
      listen("tauri://drag-leave", () => setOver(false)),
      listen("tauri://drag-drop", (p) => {
        setOver(false);
        handler.current(p.paths || []);
      }),
    ];
    return () => stops.forEach((s) => s());
  }, []);
  return over;
}

const baseName = (path) => path.split(/[\\/]/).pop();

let transferCount = 0;
// What the window shows itself (client/desktop/src/documents.rs decides; this only hides
// the button where it would refuse).
const IMAGE = /\.(png|jpe?g|gif|webp)$/i;
const MAX_PREVIEW = 16 << 20;

function Documents({ file, version, fail, changed }) {
  const [docs, setDocs] = useState(null);
  const [year, setYear] = useState("");
  const [preview, setPreview] = useState(null);
  const [transfers, run] = useTransfers(fail);
  useEffect(() => {
    invoke("documents", { file }).then(setDocs, fail);
  }, [file, version]);

  const upload = async (path) => {
    const y = year.trim() ? Number(year) : null;
    if (await run("up", baseName(path), "doc_upload", { file, path, year: y }, () => t("doc-uploaded"))) changed();
  };
  const download = (d) =>
    run("down", d.name, "doc_download", { file, document: d.document }, (where) => t("doc-saved", { path: where }));
  const over = useDrop((paths) => paths.forEach(upload));

  const show = async (d) => {
    try {
      setPreview({ name: d.name, url: await invoke("doc_preview", { file, document: d.document }) });
    } catch (err) {
      fail(err);
    }
  };
  return html`<div class="documents">
    ${preview
      ? html`<div class="dialog preview" data-test="preview-dialog" role="dialog">
          <h3>${preview.name}</h3>
          <img data-test="preview-image" src=${preview.url} alt=${preview.name} />
          <div><button data-test="preview-close" onClick=${() => setPreview(null)}>${t("dialog-close")}</button></div>
        </div>`
      : null}
    <div class=${"dropzone" + (over ? " over" : "")} data-test="dropzone">
      <p>${t("doc-drop")}</p>
      <button data-test="doc-choose" onClick=${async () => {
        try {
          for (const path of await invoke("choose_files")) upload(path);
        } catch (err) {
          fail(err);
        }
      }}>${t("doc-choose")}</button>
      <label class="field year">
        <span>${t("doc-year")}</span>
        <input data-test="doc-year" type="number" min="1900" max="2999" placeholder=${new Date().getFullYear()} value=${year} onInput=${(e) => setYear(e.target.value)} />
      </label>
    </div>
    <${Transfers} name="transfers" transfers=${transfers} />
    ${docs && !docs.length ? html`<p class="muted">${t("doc-none")}</p>` : null}
    <table class="grid" data-test="documents">
      ${docs && docs.length
        ? html`<thead><tr>
            <th>${t("doc-col-name")}</th><th>${t("doc-col-size")}</th><th>${t("doc-col-year")}</th><th>${t("doc-col-added")}</th><th></th>
          </tr></thead>`
        : null}
      <tbody>
        ${(docs || []).map(
          (d) => html`<tr key=${d.document}>
            <td>${d.name}</td>
            <td class="muted">${bytes(d.size)}</td>
            <td class="muted">${d.year || ""}</td>
            <td class="muted">${when(d.uploaded_ms)}</td>
            <td>
              ${IMAGE.test(d.name) && d.size <= MAX_PREVIEW
                ? html`<button class="secondary" data-test="preview" onClick=${() => show(d)}>${t("doc-preview")}</button> `
                : null}
              <button data-test="download" onClick=${() => download(d)}>${t("doc-download")}</button>
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
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

const rateLabel = (r) => (r === "zw" ? "zw." : r + "%");
const emptyLine = () => ({ service: "", billing: "monthly", net: "", vat: "23" });

/// One kind of billing's summary: net, VAT and gross, per rate and in total.
function OfferSummary({ label, sum }) {
  if (!sum.rates.length) return null;
  return html`<tr class="sum">
    <th colspan="2">${label}</th>
    <td>${money(sum.total.net)}</td>
    <td>${sum.rates.map((r) => rateLabel(r.rate)).join(", ")}</td>
    <td>${money(sum.total.vat)}</td>
    <td>${money(sum.total.gross)}</td>
  </tr>`;
}

/// Offers to a lead (or customer): made here as drafts, sent (the PDF goes into the
/// file's documents), accepted (a lead becomes a customer) or rejected.
function Offers({ file, version, fail, changed }) {
  const [offers, setOffers] = useState(null);
  const [lines, setLines] = useState([emptyLine()]);
  const [until, setUntil] = useState(addDays(today(), 30));
  useEffect(() => {
    invoke("offers", { file }).then(setOffers, fail);
  }, [file, version]);
  const setLine = (i, k) => (v) => setLines(lines.map((l, j) => (j === i ? { ...l, [k]: v } : l)));
  const add = async (e) => {
    e.preventDefault();
    try {
      await invoke("offer_add", { file, lines, validUntil: until });
      setLines([emptyLine()]);
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const move = (offer, to) => async () => {
    try {
      await invoke("offer_status", { offer, to, lang: document.documentElement.lang });
      changed();
    } catch (err) {
      fail(err);
    }
  };
  const select = (name, value, onInput, options) => html`<select data-test=${name} value=${value} onChange=${(e) => onInput(e.target.value)}>
    ${options.map(([v, label]) => html`<option value=${v}>${label}</option>`)}
  </select>`;
  return html`<div class="offers">
    <form class="offer-form" onSubmit=${add}>
      ${lines.map(
        (l, i) => html`<div class="inline offer-line" key=${i}>
          <${Field} label=${t("offer-service")} name="offer-service" value=${l.service} onInput=${setLine(i, "service")} />
          <label class="field"><span>${t("offer-billing")}</span>
            ${select("offer-billing", l.billing, setLine(i, "billing"), [
              ["monthly", t("offer-billing-monthly")],
              ["one-off", t("offer-billing-once")],
            ])}
          </label>
          <${Field} label=${t("offer-net")} name="offer-net" value=${l.net} placeholder="1 200,00" onInput=${setLine(i, "net")} />
          <label class="field"><span>${t("offer-vat")}</span>
            ${select("offer-vat", l.vat, setLine(i, "vat"), [
              ["23", "23%"],
              ["8", "8%"],
              ["zw", "zw."],
            ])}
          </label>
          ${lines.length > 1
            ? html`<button type="button" class="link" title=${t("offer-line-remove")} onClick=${() => setLines(lines.filter((_, j) => j !== i))}>×</button>`
            : null}
        </div>`,
      )}
      <div class="inline">
        <button type="button" class="secondary" data-test="offer-line-add" onClick=${() => setLines([...lines, emptyLine()])}>${t("offer-line-add")}</button>
        <${Field} label=${t("offer-valid-until")} name="offer-valid-until" type="date" value=${until} onInput=${setUntil} />
        <button data-test="offer-add" type="submit">${t("offer-add-submit")}</button>
      </div>
    </form>
    ${offers && !offers.length ? html`<p class="muted">${t("offer-none")}</p>` : null}
    ${(offers || []).map(
      (o) => html`<article class="offer" key=${o.id} data-test="offer" data-status=${o.status}>
        <header>
          <strong>${t("offer-number", { number: o.id.slice(0, 8) })}</strong>
          <span class="status">${t("offer-status-" + o.status)}</span>
          <span class="muted">${t("offer-valid-through", { day: o.valid_until || "" })}${o.expired ? " · " + t("offer-expired") : ""}</span>
        </header>
        <table class="grid">
          <thead><tr>
            <th>${t("offer-service")}</th><th>${t("offer-billing")}</th><th>${t("offer-net")}</th>
            <th>${t("offer-vat")}</th><th>${t("offer-vat-amount")}</th><th>${t("offer-gross")}</th>
          </tr></thead>
          <tbody>
            ${o.lines.map(
              (l, i) => html`<tr>
                <td>${l.service}</td>
                <td>${t(l.billing === "monthly" ? "offer-billing-monthly" : "offer-billing-once")}</td>
                <td>${money(l.net)}</td>
                <td>${rateLabel(l.vat)}</td>
                <td>${money(o.line_amounts[i].vat)}</td>
                <td>${money(o.line_amounts[i].gross)}</td>
              </tr>`,
            )}
            <${OfferSummary} label=${t("offer-total-monthly")} sum=${o.totals.monthly} />
            <${OfferSummary} label=${t("offer-total-once")} sum=${o.totals.one_off} />
          </tbody>
        </table>
        <div class="actions">
          ${o.status === "draft" ? html`<button data-test="offer-send" onClick=${move(o.id, "sent")}>${t("offer-send")}</button>` : null}
          ${o.status === "sent" && !o.expired ? html`<button data-test="offer-accept" onClick=${move(o.id, "accepted")}>${t("offer-accept")}</button>` : null}
          ${o.status === "draft" || o.status === "sent"
            ? html`<button class="secondary" data-test="offer-reject" onClick=${move(o.id, "rejected")}>${t("offer-reject")}</button>`
            : null}
          ${o.pdf ? html`<span class="muted" data-test="offer-pdf">${t("offer-pdf-stored")}</span>` : null}
        </div>
      </article>`,
    )}
  </div>`;
}

/// The conversation with the customer's guests (`protocol-spec/guests.md`): for staff
/// (`staff`) the customer's side and the file's internal messages, marked, with a switch
/// to write internally; for a guest (no `file`: theirs is the roster's) their side only.
/// Files dropped here are shared in the conversation (encrypted, readable by its guests).
export function Conversation({ file, staff, version, fail, changed, profile }) {
  const [messages, setMessages] = useState(null);
  const [text, setText] = useState("");
  const [internal, setInternal] = useState(false);
  const [transfers, run] = useTransfers(fail);
  const args = file ? { file } : {};
  useEffect(() => {
    invoke("conversation_read", args).then(setMessages, fail);
  }, [file, version]);
  const share = async (path) => {
    if (await run("share", baseName(path), "conversation_share", { ...args, path }, () => t("doc-uploaded"))) changed();
  };
  const over = useDrop((paths) => paths.forEach(share));
  const fetchDoc = (m) =>
    run("get", m.body, "conversation_download", { ...args, document: m.attachment }, (where) => t("doc-saved", { path: where }));
  const send = async (e) => {
    e.preventDefault();
    if (!text.trim()) return;
    try {
      await invoke("conversation_send", { ...args, text, internal: Boolean(staff && internal) });
      setText("");
      changed();
    } catch (err) {
      fail(err);
    }
  };
  return html`<div class=${"chat conversation" + (over ? " over" : "")}>
    ${staff ? html`<p class="muted">${t("conversation-staff-help")}</p>` : null}
    ${staff && profile && profile.admin ? html`<${GuestInvite} file=${file} fail=${fail} />` : null}
    ${messages && !messages.length ? html`<p class="muted">${t("chat-empty")}</p>` : null}
    <ol class="messages" data-test="conversation-messages">
      ${(messages || []).map(
        (m) => html`<li key=${(m.internal ? "i" : "c") + m.seq} class=${m.internal ? "internal" : ""}>
          <span class="who">${m.name || ""}</span>
          <span class="when">${when(m.created_ms)}</span>
          ${m.internal ? html`<span class="badge" data-test="internal-badge">${t("conversation-internal")}</span>` : null}
          <div class="body">
            ${m.deleted
              ? t("chat-deleted")
              : m.waiting_for_key
                ? t("chat-waiting")
                : m.attachment && !m.internal
                  ? html`<span class="attachment" data-test="shared-document">📎 ${m.body}</span>
                      <button class="link" data-test="shared-download" onClick=${() => fetchDoc(m)}>${t("doc-download")}</button>`
                  : m.body}
          </div>
        </li>`,
      )}
    </ol>
    <${Transfers} name="conversation-transfers" transfers=${transfers} />
    <p class="muted hint">${t("conversation-drop-hint")}</p>
    <button class="secondary" data-test="conversation-choose" onClick=${async () => {
      try {
        for (const path of await invoke("choose_files")) share(path);
      } catch (err) {
        fail(err);
      }
    }}>${t("doc-choose")}</button>
    <form class="composer" onSubmit=${send}>
      <input data-test="conversation-input" value=${text} placeholder=${t(internal ? "conversation-internal-placeholder" : "chat-placeholder")} onInput=${(e) => setText(e.target.value)} />
      ${staff
        ? html`<label class="check"><input type="checkbox" data-test="conversation-internal" checked=${internal} onChange=${(e) => setInternal(e.target.checked)} /> ${t("conversation-internal-only")}</label>`
        : null}
      <button data-test="conversation-send" type="submit">${t("chat-send")}</button>
    </form>
  </div>`;
}

/// An admin brings a customer's person into the conversation: a one-time code to hand over.
function GuestInvite({ file, fail }) {
  const [name, setName] = useState("");
  const [code, setCode] = useState(null);
  const invite = async (e) => {
    e.preventDefault();
    try {
      setCode(await invoke("guest_invite", { file, name, hours: 168 }));
      setName("");
    } catch (err) {
      fail(err);
    }
  };
  return html`<form class="guest-invite" onSubmit=${invite}>
    <${Field} label=${t("guest-invite-name")} name="guest-name" value=${name} onInput=${setName} />
    <button data-test="guest-invite" type="submit">${t("guest-invite")}</button>
    ${code
      ? html`<p>${t("guest-invite-code")}</p><p class="fingerprint" data-test="guest-code">${code}</p>`
      : null}
  </form>`;
}

const TABS = {
  timeline: Timeline,
  chat: Chat,
  conversation: (props) => html`<${Conversation} staff=${true} ...${props} />`,
  documents: Documents,
  tasks: Tasks,
  offers: Offers,
  mail: CustomerMail,
  ksef: CustomerInvoices,
};

export function Customer({ customer, version, fail, changed, me, profile }) {
  const [tab, setTab] = useState("timeline");
  const props = { file: customer.file, version, fail, changed, me, profile };
  const View = TABS[tab];
  return html`<section class="customer">
    <header>
      <h2 data-test="customer-title">${customer.name}</h2>
      ${customer.nip ? html`<span class="muted">NIP ${customer.nip}</span>` : null}
    </header>
    <div class="tabs">
      ${Object.keys(TABS).map(
        (k) => html`<button data-test=${"tab-" + k} class=${tab === k ? "on" : ""} onClick=${() => setTab(k)}>
          ${t("tab-" + k)}
        </button>`,
      )}
    </div>
    <${View} ...${props} />
  </section>`;
}
