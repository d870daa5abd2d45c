// Audit log: the tenant's events as GET /api/events/audit reads them (filters, keyset pages, newest first), and the
// whole log with the same filters from GET /api/events/audit/export (CSV or NDJSON, oldest first).
import { api, token, APIError } from "./api.js";
import { h, field, clearErrors, showError, formMessage, table, time, pageHeader } from "./ui.js";

const CODES = ["route.add", "route.update", "route.delete", "group.add", "group.update", "group.delete", "peer.group.add",
  "peer.group.delete", "peer.rename", "peer.setupkey.add", "peer.user.add", "user.peer.delete", "peer.drain.enable",
  "peer.drain.disable", "setupkey.add", "setupkey.update", "setupkey.revoke", "setupkey.delete", "setupkey.group.add",
  "setupkey.group.delete", "personal.access.token.create", "personal.access.token.delete", "account.create",
  "policy.add", "policy.update", "policy.delete"];

export async function renderAudit(container, { isCurrent }) {
  const code = h("select", { name: "activity_code" }, h("option", { value: "" }, "any activity"), CODES.map((c) => h("option", { value: c }, c)));
  const target = h("input", { type: "text", name: "target_id", autocomplete: "off", placeholder: "route, group, peer or key id" });
  const initiator = h("input", { type: "text", name: "initiator_id", autocomplete: "off" });
  const search = h("input", { type: "search", name: "search", autocomplete: "off", placeholder: "at least 3 characters" });
  const start = h("input", { type: "datetime-local", name: "start_date" });
  const end = h("input", { type: "datetime-local", name: "end_date" });
  const limit = h("select", { name: "limit" }, [10, 50, 100, 500].map((n) => h("option", { value: n, selected: n === 50 }, String(n))));
  const message = formMessage();
  const form = h("form", { class: "filters", novalidate: true, "aria-label": "Audit log filters" },
    field("Activity", code, { name: "activity_code" }), field("Target id", target, { name: "target_id" }),
    field("Initiator id", initiator, { name: "initiator_id" }), field("Text", search, { name: "search" }),
    field("From", start, { name: "start_date" }), field("Until", end, { name: "end_date" }), field("Per page", limit, { name: "limit" }),
    message, h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply filters")));
  const results = h("div", { class: "audit-results", "aria-live": "polite" });
  const pager = h("div", { class: "actions pager" });
  container.replaceChildren(pageHeader("Audit log"), form, results, pager);
  const cursors = []; // the cursor of each page shown before the current one (keyset pages)
  let current = null;

  const query = (cursor) => {
    const p = new URLSearchParams();
    if (code.value) p.set("activity_code", code.value);
    if (target.value.trim()) p.set("target_id", target.value.trim());
    if (initiator.value.trim()) p.set("initiator_id", initiator.value.trim());
    if (search.value.trim()) p.set("search", search.value.trim());
    if (start.value) p.set("start_date", new Date(start.value).toISOString());
    if (end.value) p.set("end_date", new Date(end.value).toISOString());
    p.set("limit", limit.value);
    if (cursor) p.set("cursor", cursor);
    return p.toString();
  };

  const show = async (cursor) => {
    clearErrors(form);
    let page;
    try {
      page = await api("GET", `/api/events/audit?${query(cursor)}`);
    } catch (error) {
      showError(form, error);
      return;
    }
    if (!isCurrent()) return;
    current = { cursor, entries: page.data, next: page.headers.get("X-Next-Cursor") };
    const rows = page.data.map((e) => h("tr", { dataset: { activityCode: e.activity_code } },
      h("td", {}, time(e.timestamp)),
      h("td", {}, h("code", {}, e.activity_code), h("div", {}, e.activity)),
      h("td", {}, e.initiator_name || e.initiator_id),
      h("td", {}, h("code", {}, e.target_id)),
      h("td", { class: "meta" }, summary(e))));
    results.replaceChildren(
      h("p", { class: "summary" }, `${page.data.length} entries${cursors.length ? ` · page ${cursors.length + 1}` : ""}`),
      page.data.length ? table("Audit entries", ["Time", "Activity", "Initiator", "Target", "Details"], rows) : h("p", { class: "empty" }, "No entries match."));
    pager.replaceChildren(
      h("button", { type: "button", class: "secondary", disabled: cursors.length === 0, onclick: () => { cursors.pop(); show(cursors.length ? cursors[cursors.length - 1] : null); } }, "Previous page"),
      h("button", { type: "button", class: "secondary", disabled: !current.next, onclick: () => { cursors.push(current.next); show(current.next); } }, "Next page"),
      h("button", { type: "button", class: "secondary", onclick: () => exportAll("csv") }, "Export all (CSV)"),
      h("button", { type: "button", class: "secondary", onclick: () => exportAll("ndjson") }, "Export all (NDJSON)"));
  };

  // Every entry the filters match, not only this page: the API streams it; the browser keeps it until it is saved.
  const exportAll = async (format) => {
    clearErrors(form);
    const p = new URLSearchParams(query(null));
    p.delete("limit");
    p.set("format", format);
    let response;
    try {
      response = await fetch(`/api/events/audit/export?${p}`, { headers: { Authorization: `Token ${token()}` }, cache: "no-store" });
    } catch {
      showError(form, new APIError(0, { message: "the controller did not answer (network error); try again" }));
      return;
    }
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch { body = null; }
      const error = new APIError(response.status, body, response.headers.get("X-Request-Id"));
      if (response.status === 401) window.dispatchEvent(new CustomEvent("routeplane:unauthorized", { detail: error }));
      showError(form, error);
      return;
    }
    const blob = await response.blob();
    const a = h("a", { href: URL.createObjectURL(blob), download: `routeplane-audit.${format}` });
    document.body.append(a);
    a.click();
    a.remove();
    URL.revokeObjectURL(a.href);
  };

  form.addEventListener("submit", (e) => { e.preventDefault(); cursors.length = 0; show(null); });
  await show(null);
}

/** The entry's changes (old → new) or its meta, in one line each. */
function summary(e) {
  const out = [];
  const changes = e.details && e.details.changes;
  if (changes && typeof changes === "object") {
    for (const [k, v] of Object.entries(changes)) out.push(h("div", {}, `${k}: ${fmt(v && v.old)} → ${fmt(v && v.new)}`));
  }
  if (out.length === 0) {
    for (const [k, v] of Object.entries(e.meta || {}).slice(0, 8)) out.push(h("div", {}, `${k}: ${v}`));
  }
  return out;
}

function fmt(v) { return v === undefined || v === null ? "—" : typeof v === "string" ? v : JSON.stringify(v); }
