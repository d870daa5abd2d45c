// History: the routes as they were at a point (sequence number or time; `as_of=` on GET /api/routes) and what changed
// between then and now (GET /api/history/diff): objects added, removed, changed field by field, and the peers whose
// views differ. Shown only when the controller's API offers both (features.history). The answers are rendered
// generically (any list of object changes or view diffs in the body), so small shape changes do not break the page.
import { api } from "./api.js";
import { h, field, clearErrors, showError, formMessage, table, pageHeader } from "./ui.js";

export async function renderHistory(container, { isCurrent }) {
  const [routesNow, peers, groups] = await Promise.all([api("GET", "/api/routes"), api("GET", "/api/peers"), api("GET", "/api/groups")]);
  if (!isCurrent()) return;
  const names = new Map([...peers.data.map((p) => [p.id, p.name]), ...groups.data.map((g) => [g.id, g.name]),
    ...routesNow.data.map((r) => [r.id, `${r.network_id} (${r.id})`])]);
  const asOf = h("input", { type: "text", name: "as_of", autocomplete: "off", placeholder: "e.g. 12 or 2026-12-05T06:00:00Z" });
  const message = formMessage();
  const results = h("div", { class: "history-results", "aria-live": "polite" });
  const form = h("form", { class: "card", novalidate: true, "aria-label": "Point in time" },
    field("As of (tenant sequence number or RFC 3339 time)", asOf, { name: "as_of", hint: `now: sequence ${routesNow.sequence ?? "?"}` }),
    message,
    h("div", { class: "actions" },
      h("button", { type: "submit" }, "Show routes then"),
      h("button", { type: "button", class: "secondary", onclick: () => diff() }, "Diff against now")));
  container.replaceChildren(pageHeader("History"), form, results);

  const show = async () => {
    clearErrors(form);
    let then;
    try {
      then = await api("GET", `/api/routes?as_of=${encodeURIComponent(asOf.value.trim())}`);
    } catch (error) { showError(form, error); return; }
    const resolved = then.headers.get("Routeplane-As-Of-Sequence") || then.headers.get("X-Routeplane-As-Of-Sequence") || asOf.value.trim();
    results.replaceChildren(
      h("h3", {}, `Routes as of sequence ${resolved} (${then.data.length})`),
      table("Routes then", ["Network identifier", "Range / domains", "Routing peer", "Metric", "Enabled", "Distribution groups"],
        then.data.map((r) => h("tr", { dataset: { routeId: r.id } },
          h("th", { scope: "row" }, r.network_id),
          h("td", {}, r.domains && r.domains.length ? r.domains.join(", ") : r.network),
          h("td", {}, r.peer ? (names.get(r.peer) || r.peer) : (r.peer_groups || []).map((g) => names.get(g) || g).join(", ")),
          h("td", {}, String(r.metric)), h("td", {}, r.enabled ? "yes" : "no"),
          h("td", {}, r.groups.map((g) => names.get(g) || g).join(", "))))));
  };

  const diff = async () => {
    clearErrors(form);
    let answer;
    try {
      const now = await api("GET", "/api/routes");
      answer = await api("GET", `/api/history/diff?from=${encodeURIComponent(asOf.value.trim())}&to=${now.sequence}`);
    } catch (error) { showError(form, error, { fieldAliases: { from: "as_of" } }); return; }
    results.replaceChildren(h("h3", {}, `Changes from ${asOf.value.trim()} to now`), renderDiff(answer.data, names));
  };

  form.addEventListener("submit", (e) => { e.preventDefault(); show(); });
}

/** Object changes (`{kind, id, change, fields: [{field, old, new}]}`) and peer view diffs (`{peer_id, added, removed,
 *  changed}`) found anywhere in `body`, as lists. */
export function renderDiff(body, names = new Map()) {
  const objects = [];
  const views = [];
  const walk = (value) => {
    if (Array.isArray(value)) { value.forEach(walk); return; }
    if (!value || typeof value !== "object") return;
    if (typeof value.change === "string" && Array.isArray(value.fields)) { objects.push(value); return; }
    if (typeof value.peer_id === "string" && (value.added || value.removed || value.changed)) { views.push(value); return; }
    Object.values(value).forEach(walk);
  };
  walk(body);
  const fmt = (v) => (v === undefined || v === null ? "—" : typeof v === "string" ? v : JSON.stringify(v));
  return h("div", { class: "diff" },
    h("h4", {}, `Objects changed: ${objects.length}`),
    objects.length ? h("ul", { class: "object-changes" }, objects.map((o) => h("li", { dataset: { change: o.change, id: o.id } },
      h("strong", {}, `${o.kind || "object"} ${names.get(o.id) || o.id} ${o.change}`),
      h("ul", {}, (o.fields || []).map((f) => h("li", {}, `${f.field}: ${fmt(f.old)} → ${fmt(f.new)}`)))))) : null,
    h("h4", {}, `Peers whose view changes: ${views.length}`),
    views.length ? h("ul", { class: "view-diffs" }, views.map((v) => h("li", { dataset: { peerId: v.peer_id } },
      h("strong", {}, names.get(v.peer_id) || v.peer_id), ": ",
      `${(v.added || []).length} added, ${(v.removed || []).length} removed, ${(v.changed || []).length} changed`,
      h("ul", {}, [...(v.added || []).map((r) => h("li", {}, `+ ${r.role || ""} ${r.network_id || r.route_id} ${r.network || (r.domains || []).join(", ")}${r.via ? ` via ${names.get(r.via) || r.via}` : ""}`)),
        ...(v.removed || []).map((r) => h("li", {}, `− ${r.role || ""} ${r.network_id || r.route_id} ${r.network || (r.domains || []).join(", ")}${r.via ? ` via ${names.get(r.via) || r.via}` : ""}`)),
        ...(v.changed || []).map((c) => h("li", {}, `~ ${c.network_id || c.route_id}: ${(c.fields || []).map((f) => `${f.field || f.name} ${fmt(f.old)} → ${fmt(f.new)}`).join("; ")}`))])))) : null);
}
