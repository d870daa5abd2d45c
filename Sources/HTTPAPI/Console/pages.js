// Groups, Peers (with drain) and Setup keys: lists from the API and the writes NetBird's dashboard offers.
import { api } from "./api.js";
import { h, field, checkboxes, checkedValues, clearErrors, showError, formMessage, openDialog, toast, badge, yesNo, table, time, pageHeader } from "./ui.js";
import { setDraining } from "./routes.js";

export async function renderGroups(container, { isCurrent }) {
  const [groups, peers] = await Promise.all([api("GET", "/api/groups"), api("GET", "/api/peers")]);
  if (!isCurrent()) return;
  const rerender = () => renderGroups(container, { isCurrent });
  const rows = groups.data.map((g) => h("tr", { dataset: { groupId: g.id } },
    h("th", { scope: "row" }, g.name, g.name === "All" ? h("span", { class: "muted" }, " (built in: every peer)") : null),
    h("td", {}, String(g.peers_count)),
    h("td", {}, g.peers.map((p) => p.name).join(", ") || h("span", { class: "muted" }, "no peers")),
    h("td", {}, g.name === "All" ? null : [
      h("button", { type: "button", class: "secondary", "aria-label": `Edit group ${g.name}`, onclick: () => groupForm(peers.data, rerender, g) }, "Edit"), " ",
      h("button", { type: "button", class: "danger", "aria-label": `Delete group ${g.name}`, onclick: async () => {
        if (!confirm(`Delete group ${g.name}?`)) return;
        try { await api("DELETE", `/api/groups/${encodeURIComponent(g.id)}`); toast(`Group ${g.name} deleted.`); } catch (error) { toast(`Not deleted: ${error.message}`); }
        rerender();
      } }, "Delete")])));
  container.replaceChildren(
    pageHeader("Groups", h("button", { type: "button", onclick: () => groupForm(peers.data, rerender) }, "Add group")),
    table("Groups", ["Name", "Peers", "Members", ""], rows));
}

function groupForm(peers, done, existing = null) {
  const name = h("input", { type: "text", name: "name", required: true, value: existing ? existing.name : "" });
  const members = checkboxes("Peers", "peers", peers.map((p) => ({ id: p.id, label: `${p.name} (${p.ip})` })), existing ? existing.peers.map((p) => p.id) : []);
  const message = formMessage();
  const form = h("form", { class: "dialog-body", novalidate: true }, field("Name", name, { name: "name" }), members, message,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save")));
  let etag = null;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const body = { name: name.value.trim(), peers: checkedValues(members, "peers") };
      if (existing) await api("PUT", `/api/groups/${encodeURIComponent(existing.id)}`, { body, ifMatch: etag });
      else await api("POST", "/api/groups", { body });
      dialog.close();
      toast(`Group ${body.name} saved.`);
      done();
    } catch (error) {
      showError(form, error, { onReload: () => { dialog.close(); done(); } });
    }
  });
  const dialog = openDialog(existing ? `Edit group ${existing.name}` : "Add group", form);
  if (existing) api("GET", `/api/groups/${encodeURIComponent(existing.id)}`).then((r) => { etag = r.etag; }).catch(() => {});
}

export async function renderPeers(container, { isCurrent }) {
  const peers = await api("GET", "/api/peers");
  if (!isCurrent()) return;
  const rerender = () => renderPeers(container, { isCurrent });
  const names = new Map(peers.data.map((p) => [p.id, p.name]));
  const rows = peers.data.map((p) => h("tr", { dataset: { peerId: p.id } },
    h("th", { scope: "row" }, p.name),
    h("td", {}, p.ip),
    h("td", {}, p.os),
    h("td", {}, p.connected ? badge("connected", "on") : badge("offline", "off"), h("div", { class: "muted" }, `last seen ${time(p.last_seen)}`)),
    h("td", { class: "view-version" }, p.applied_view_version ? `v${p.applied_view_version}` : h("span", { class: "muted" }, "none yet")),
    h("td", {}, (p.route_selections || []).map((s) => h("div", {}, `${s.network_id} → ${names.get(s.peer_id) || s.peer_id}`, s.status !== "active" ? badge(s.status, "warn") : null)),
      (p.shadowed_routes || []).map((s) => h("div", { class: "muted" }, `${s.network_id} shadowed by ${s.shadowed_by_network_id}`))),
    h("td", {}, p.groups.map((g) => g.name).join(", ")),
    h("td", {}, p.draining ? badge("draining", "warn") : badge("no", "off")),
    h("td", {},
      h("button", { type: "button", class: "secondary", "aria-label": `${p.draining ? "Undrain" : "Drain"} ${p.name}`,
        onclick: async () => { await setDraining(p, !p.draining); rerender(); } }, p.draining ? "Undrain" : "Drain"), " ",
      h("button", { type: "button", class: "danger", "aria-label": `Delete peer ${p.name}`, onclick: async () => {
        if (!confirm(`Delete peer ${p.name}? Its agent loses its routes and its credentials.`)) return;
        try { await api("DELETE", `/api/peers/${encodeURIComponent(p.id)}`); toast(`Peer ${p.name} deleted.`); } catch (error) { toast(`Not deleted: ${error.message}`); }
        rerender();
      } }, "Delete"))));
  container.replaceChildren(
    pageHeader("Peers", h("button", { type: "button", class: "secondary", onclick: rerender }, "Refresh")),
    h("p", { class: "summary" }, `${peers.data.length} peers · ${peers.data.filter((p) => p.connected).length} connected · tenant sequence ${peers.sequence ?? "?"}. `,
      "Peers enroll with a setup key (", h("code", {}, "routeplane agent"), "). A draining routing peer is used by clients only when no other routing peer is up."),
    table("Peers", ["Name", "Mesh IP", "OS", "Status", "View applied", "Routing peer in use", "Groups", "Draining", ""], rows));
}

export async function renderSetupKeys(container, { isCurrent }) {
  const [keys, groups] = await Promise.all([api("GET", "/api/setup-keys"), api("GET", "/api/groups")]);
  if (!isCurrent()) return;
  const rerender = () => renderSetupKeys(container, { isCurrent });
  const groupName = new Map(groups.data.map((g) => [g.id, g.name]));
  const rows = keys.data.map((k) => h("tr", { dataset: { setupKeyId: k.id } },
    h("th", { scope: "row" }, k.name),
    h("td", {}, h("code", {}, k.key)),
    h("td", {}, k.type),
    h("td", {}, badge(k.state, k.valid ? "on" : "off")),
    h("td", {}, `${k.used_times}${k.usage_limit ? ` of ${k.usage_limit}` : ""}`),
    h("td", {}, time(k.expires)),
    h("td", {}, k.auto_groups.map((g) => groupName.get(g) || g).join(", ")),
    h("td", {}, k.revoked ? null : h("button", { type: "button", class: "secondary", "aria-label": `Revoke setup key ${k.name}`, onclick: async () => {
      if (!confirm(`Revoke setup key ${k.name}? Agents can no longer enroll with it.`)) return;
      try { await api("PUT", `/api/setup-keys/${encodeURIComponent(k.id)}`, { body: { revoked: true, auto_groups: k.auto_groups } }); toast(`Setup key ${k.name} revoked.`); } catch (error) { toast(`Not revoked: ${error.message}`); }
      rerender();
    } }, "Revoke"), " ",
    h("button", { type: "button", class: "danger", "aria-label": `Delete setup key ${k.name}`, onclick: async () => {
      if (!confirm(`Delete setup key ${k.name}?`)) return;
      try { await api("DELETE", `/api/setup-keys/${encodeURIComponent(k.id)}`); toast(`Setup key ${k.name} deleted.`); } catch (error) { toast(`Not deleted: ${error.message}`); }
      rerender();
    } }, "Delete"))));
  container.replaceChildren(
    pageHeader("Setup keys", h("button", { type: "button", onclick: () => setupKeyForm(groups.data, rerender) }, "Create setup key")),
    table("Setup keys", ["Name", "Key", "Type", "State", "Used", "Expires", "Auto groups", ""], rows));
}

function setupKeyForm(groups, done) {
  const name = h("input", { type: "text", name: "name", required: true });
  const type = h("select", { name: "type" }, h("option", { value: "reusable" }, "reusable"), h("option", { value: "one-off" }, "one-off"));
  const days = h("input", { type: "number", name: "expires_in", min: 0, max: 365, value: 30 });
  const limit = h("input", { type: "number", name: "usage_limit", min: 0, value: 0 });
  const ephemeral = h("input", { type: "checkbox", id: "key-ephemeral", name: "ephemeral" });
  const auto = checkboxes("Auto groups (peers enrolled with the key join them)", "auto_groups",
    groups.filter((g) => g.name !== "All").map((g) => ({ id: g.id, label: g.name })));
  const message = formMessage();
  const form = h("form", { class: "dialog-body", novalidate: true },
    field("Name", name, { name: "name" }), field("Type", type, { name: "type" }),
    field("Expires in (days; 0 = never)", days, { name: "expires_in" }), field("Usage limit (0 = unlimited)", limit, { name: "usage_limit" }),
    h("div", { class: "check", dataset: { field: "ephemeral" } }, ephemeral, h("label", { for: "key-ephemeral" }, "Ephemeral peers"), h("p", { class: "field-error", hidden: true })),
    auto, message, h("div", { class: "actions" }, h("button", { type: "submit" }, "Create")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const result = await api("POST", "/api/setup-keys", { body: {
        name: name.value.trim(), type: type.value, expires_in: Number(days.value || 0) * 86400,
        usage_limit: Number(limit.value || 0), ephemeral: ephemeral.checked, auto_groups: checkedValues(auto, "auto_groups"),
      } });
      form.replaceChildren(h("p", {}, "The key is shown once; copy it now:"), h("p", {}, h("code", { class: "secret", tabindex: "0" }, result.data.key)),
        h("p", { class: "hint" }, "Give it to the agent in a 0600 file (--setup-key-file) or ROUTEPLANE_SETUP_KEY, never on the command line."),
        h("div", { class: "actions" }, h("button", { type: "button", onclick: () => dialog.close() }, "Done")));
      done();
    } catch (error) {
      showError(form, error);
    }
  });
  const dialog = openDialog("Create setup key", form);
}
