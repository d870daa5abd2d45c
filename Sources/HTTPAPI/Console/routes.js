// Network Routes: routes grouped by network identifier (one HA set per identifier and destination), with what the
// agents report live (connected, draining, which routing peer the clients use, views applied), Add Route with
// NetBird's form, Configure (add or remove routing peers, edit, enable/disable, drain).
import { api, features } from "./api.js";
import { preview } from "./dryrun.js";
import { h, field, checkboxes, checkedValues, clearErrors, showError, formMessage, openDialog, toast, badge, yesNo, pageHeader, isConflict } from "./ui.js";

/** Everything the page shows, read in parallel. */
async function load() {
  const [routes, groups, peers] = await Promise.all([api("GET", "/api/routes"), api("GET", "/api/groups"), api("GET", "/api/peers")]);
  return { routes: routes.data, groups: groups.data, peers: peers.data, sequence: routes.sequence };
}

function index(data) {
  const peerByID = new Map(data.peers.map((p) => [p.id, p]));
  const groupByID = new Map(data.groups.map((g) => [g.id, g]));
  return { peerByID, groupByID };
}

/** The routing peers (ids) of one route: its peer, or the members of its peer groups that can route. */
function routingPeersOf(route, ix) {
  if (route.peer) return [route.peer];
  const skipped = new Set((route.skipped_routing_peers || []).map((p) => p.id));
  const out = [];
  for (const g of route.peer_groups || []) for (const p of ix.groupByID.get(g)?.peers || []) if (!skipped.has(p.id)) out.push(p.id);
  return [...new Set(out)];
}

function destination(route) { return route.domains && route.domains.length ? route.domains.join(", ") : route.network; }

/** Peers that receive the routes of one network identifier as clients: members of the distribution groups of its
 *  enabled routes, without its routing peers. */
function clientsOf(routes, routing, ix) {
  const clients = new Set();
  for (const r of routes) if (r.enabled) for (const g of r.groups) for (const p of ix.groupByID.get(g)?.peers || []) clients.add(p.id);
  for (const p of routing) clients.delete(p);
  return [...clients];
}

function peerState(peer) {
  if (!peer) return [badge("unknown peer", "warn")];
  return [peer.connected ? badge("connected", "on") : badge("offline", "off"), peer.draining ? badge("draining", "warn") : null];
}

export async function renderRoutes(container, { isCurrent }) {
  const data = await load();
  if (!isCurrent()) return;
  const ix = index(data);
  const filter = h("input", { type: "search", placeholder: "network identifier, range, domain", autocomplete: "off" });
  const delivery = h("p", { id: "delivery", class: "delivery", role: "status", "aria-live": "polite", hidden: true });
  const body = h("div", { class: "route-groups" });
  container.replaceChildren(
    pageHeader("Network Routes", h("button", { type: "button", id: "add-route", onclick: () => routeForm({ data, ix, container, isCurrent }) }, "Add Route")),
    h("p", { class: "summary" }, `${data.routes.length} routes in ${new Set(data.routes.map((r) => r.network_id)).size} network identifiers · tenant sequence ${data.sequence ?? "?"}`),
    field("Filter", filter),
    delivery,
    body);
  const draw = () => body.replaceChildren(routeTable(data, ix, filter.value.trim().toLowerCase(), { container, isCurrent }));
  filter.addEventListener("input", draw);
  draw();
  document.body.dataset.ready = "routes";
  performance.mark("routes-rendered");
}

function routeTable(data, ix, filter, ctx) {
  const byNetwork = new Map();
  for (const r of data.routes) {
    if (filter && !`${r.network_id} ${destination(r)} ${r.description}`.toLowerCase().includes(filter)) continue;
    if (!byNetwork.has(r.network_id)) byNetwork.set(r.network_id, []);
    byNetwork.get(r.network_id).push(r);
  }
  if (byNetwork.size === 0) return h("p", { class: "empty" }, data.routes.length ? "No route matches the filter." : "No routes yet. Add Route creates the first.");
  const usage = new Map(); // "network_id\u0000peer_id" → clients using it
  for (const p of data.peers) for (const s of p.route_selections || []) {
    const key = `${s.network_id}\u0000${s.peer_id}`;
    usage.set(key, (usage.get(key) || 0) + 1);
  }
  const headings = ["Range / domains", "Routing peers", "Metric", "Masquerade", "Distribution groups", "Enabled", ""];
  const tbodies = [];
  for (const [networkID, routes] of byNetwork) {
    const routing = [...new Set(routes.flatMap((r) => routingPeersOf(r, ix)))];
    const clients = clientsOf(routes, routing, ix);
    const connected = clients.filter((c) => ix.peerByID.get(c)?.connected).length;
    const using = clients.filter((c) => (ix.peerByID.get(c)?.route_selections || []).some((s) => s.network_id === networkID)).length;
    const head = h("tr", { class: "net-head" },
      h("th", { scope: "rowgroup", colspan: headings.length - 1 },
        h("span", { class: "net-id" }, networkID), " ",
        routes[0].description ? h("span", { class: "muted" }, routes[0].description) : null, " ",
        badge(`HA ${routing.length}`, routing.length > 1 ? "on" : ""), " ",
        h("span", { class: "facts" }, `${clients.length} clients · ${connected} connected · ${using} report a routing peer in use`)),
      h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Configure ${networkID}`,
        onclick: () => configure(networkID, ctx) }, "Configure")));
    const rows = routes.map((r) => h("tr", { dataset: { routeId: r.id } },
      h("td", {}, destination(r), r.keep_route ? h("span", { class: "muted" }, " (keep route)") : null),
      h("td", {}, routingPeersOf(r, ix).map((id) => {
        const peer = ix.peerByID.get(id);
        const n = usage.get(`${networkID}\u0000${id}`) || 0;
        return h("div", { class: "routing-peer", dataset: { peerId: id } }, peer ? peer.name : id, " ", peerState(peer),
          h("span", { class: "muted" }, ` used by ${n} client${n === 1 ? "" : "s"}`));
      }), r.peer_groups ? h("div", { class: "muted" }, "peer group: ", r.peer_groups.map((g) => ix.groupByID.get(g)?.name || g).join(", ")) : null,
      (r.skipped_routing_peers || []).length ? h("div", { class: "muted" }, `skipped (not Linux): ${r.skipped_routing_peers.map((p) => p.name).join(", ")}`) : null),
      h("td", {}, String(r.metric)),
      h("td", {}, yesNo(r.masquerade)),
      h("td", {}, r.groups.map((g) => ix.groupByID.get(g)?.name || g).join(", ") || h("span", { class: "muted" }, "none")),
      h("td", {}, r.enabled ? badge("enabled", "on") : badge("disabled", "off")),
      h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `${r.enabled ? "Disable" : "Enable"} route ${networkID} ${destination(r)}`,
        onclick: () => toggleEnabled(r.id, ctx) }, r.enabled ? "Disable" : "Enable"))));
    tbodies.push(h("tbody", { dataset: { networkId: networkID } }, head, rows));
  }
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Network routes" },
    h("table", { class: "routes" }, h("caption", { class: "visually-hidden" }, "Network routes by network identifier"),
      h("thead", {}, h("tr", {}, headings.map((x) => h("th", { scope: "col" }, x)))), tbodies));
}

/** After a write: how many of the peers it concerns have applied a view at least as new as the write (polls the
 *  peers' status for up to 30 s). A peer whose view the write did not change is not re-sent one, so it is not counted. */
export async function watchDelivery(sequence, peerIDs, label) {
  const el = document.getElementById("delivery");
  if (!el || sequence === null || peerIDs.length === 0) return;
  el.hidden = false;
  const deadline = Date.now() + 30000;
  for (;;) {
    let peers;
    try { peers = (await api("GET", "/api/peers")).data; } catch { return; }
    const mine = peers.filter((p) => peerIDs.includes(p.id));
    const done = mine.filter((p) => p.applied_view_version >= sequence);
    if (!document.body.contains(el)) return;
    el.textContent = `${label}: ${done.length} of ${mine.length} peers applied a view at or after sequence ${sequence}` +
      (done.length < mine.length ? ` (waiting for ${mine.filter((p) => !done.includes(p)).map((p) => p.name).join(", ")})` : " ✓");
    el.dataset.delivered = String(done.length);
    el.dataset.expected = String(mine.length);
    if (done.length === mine.length || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The peers whose views a write of `route` changes: its routing peers, and the members of its distribution groups
 *  that are not themselves routing peers of the same HA set (a routing peer gets no client route of its own set). */
function affectedPeers(route, data) {
  const ix = index(data);
  const own = new Set(routingPeersOf(route, ix));
  const sameSet = new Set(data.routes.filter((r) => r.network_id === route.network_id && destination(r) === destination(route))
    .flatMap((r) => routingPeersOf(r, ix)));
  const out = new Set(own);
  if (route.enabled) for (const g of route.groups) for (const p of ix.groupByID.get(g)?.peers || []) if (!sameSet.has(p.id)) out.add(p.id);
  return [...out];
}

async function reloadPage(ctx, after) {
  if (!ctx.isCurrent()) return;
  await renderRoutes(ctx.container, ctx);
  if (after) after();
}

async function toggleEnabled(routeID, ctx) {
  try {
    const current = await api("GET", `/api/routes/${encodeURIComponent(routeID)}`);
    const r = current.data;
    const result = await api("PUT", `/api/routes/${encodeURIComponent(routeID)}`, { body: requestBody(r, { enabled: !r.enabled }), ifMatch: current.etag });
    toast(`Route ${r.network_id} ${result.data.enabled ? "enabled" : "disabled"}.`);
    const data = await load();
    await reloadPage(ctx, () => watchDelivery(result.sequence, affectedPeers(result.data, data), `${r.network_id} ${result.data.enabled ? "enabled" : "disabled"}`));
  } catch (error) {
    toast(isConflict(error) ? "Someone else changed this route just now; the page shows the current version." : `Not changed: ${error.message}`);
    await reloadPage(ctx);
  }
}

/** A route as the API's request body, with `changes` applied (PUT replaces the whole route, as NetBird's). */
function requestBody(r, changes = {}) {
  const body = {
    network_id: r.network_id, description: r.description, metric: r.metric, masquerade: r.masquerade,
    groups: r.groups, enabled: r.enabled, keep_route: r.keep_route, skip_auto_apply: r.skip_auto_apply,
    access_control_groups: r.access_control_groups || [],
  };
  if (r.domains && r.domains.length) body.domains = r.domains; else body.network = r.network;
  if (r.peer) body.peer = r.peer; else body.peer_groups = r.peer_groups || [];
  return Object.assign(body, changes);
}

/**
 * Add Route (no `existing`) or edit one route (`existing`: {route, etag}), with every field of NetBird's form.
 * `preset`: values for a new route (Configure's "Add additional routing peer" copies the HA set's).
 */
function routeForm(ctx, existing = null, preset = null) {
  const { data } = ctx;
  const r = existing ? existing.route : preset;
  let etag = existing ? existing.etag : null;
  const linuxPeers = data.peers.filter((p) => (p.os || "").toLowerCase().includes("linux"));
  const groupItems = data.groups.map((g) => ({ id: g.id, label: `${g.name} (${g.peers_count})` }));
  const networkID = h("input", { type: "text", name: "network_id", maxlength: 40, required: true, value: r?.network_id || "" });
  const description = h("input", { type: "text", name: "description", value: r?.description || "" });
  const isDomains = !!(r && r.domains && r.domains.length);
  const typeRange = h("input", { type: "radio", name: "kind", id: "kind-range", value: "range", checked: !isDomains });
  const typeDomains = h("input", { type: "radio", name: "kind", id: "kind-domains", value: "domains", checked: isDomains });
  const network = h("input", { type: "text", name: "network", placeholder: "172.31.0.0/16", value: r && !isDomains ? r.network : "" });
  const domains = h("input", { type: "text", name: "domains", placeholder: "example.com, *.example.org", value: isDomains ? r.domains.join(", ") : "" });
  const keepRoute = h("input", { type: "checkbox", name: "keep_route", checked: !!r?.keep_route });
  const byGroup = !!(r && !r.peer && r.peer_groups && r.peer_groups.length);
  const viaPeer = h("input", { type: "radio", name: "via", id: "via-peer", value: "peer", checked: !byGroup });
  const viaGroup = h("input", { type: "radio", name: "via", id: "via-group", value: "group", checked: byGroup });
  const peer = h("select", { name: "peer" }, h("option", { value: "" }, "— choose a routing peer —"),
    linuxPeers.map((p) => h("option", { value: p.id, selected: r?.peer === p.id }, `${p.name} (${p.ip})`)));
  const peerGroups = checkboxes("Peer group (every Linux member routes)", "peer_groups", groupItems, r?.peer_groups || []);
  const groups = checkboxes("Distribution groups", "groups", groupItems, r?.groups || []);
  const acl = checkboxes("Access control groups", "access_control_groups", groupItems, r?.access_control_groups || []);
  const metric = h("input", { type: "number", name: "metric", min: 1, max: 9999, value: r?.metric ?? 9999 });
  const masquerade = h("input", { type: "checkbox", name: "masquerade", checked: r ? !!r.masquerade : true });
  const enabled = h("input", { type: "checkbox", name: "enabled", checked: r ? !!r.enabled : true });
  const autoApply = h("input", { type: "checkbox", name: "auto_apply", checked: r ? !r.skip_auto_apply : true });
  const message = formMessage();
  const previewSlot = h("div", { class: "preview-slot", "aria-live": "polite" });
  const rangeBox = h("div", {}, field("Network range", network, { name: "network", hint: "IPv4 or IPv6 CIDR, e.g. 172.31.0.0/16" }));
  const domainBox = h("div", {}, field("Domains", domains, { name: "domains", hint: "comma-separated; resolved on the routing peer" }),
    h("div", { class: "check", dataset: { field: "keep_route" } }, keepRoute, h("label", { for: keepRoute.id = "keep-route" }, "Keep route (keep resolved addresses routed after DNS changes)"), h("p", { class: "field-error", hidden: true })));
  const peerBox = h("div", {}, field("Routing peer", peer, { name: "peer", hint: "only Linux peers can route" }));
  const groupBox = h("div", {}, peerGroups);
  const sync = () => {
    rangeBox.hidden = !typeRange.checked; domainBox.hidden = !typeDomains.checked;
    peerBox.hidden = !viaPeer.checked; groupBox.hidden = !viaGroup.checked;
  };
  for (const x of [typeRange, typeDomains, viaPeer, viaGroup]) x.addEventListener("change", sync);
  const check = (input, id, label, name) => { input.id = id; return h("div", { class: "check", dataset: { field: name } }, input, h("label", { for: id }, label), h("p", { class: "field-error", hidden: true })); };
  const form = h("form", { class: "dialog-body route-form", novalidate: true },
    field("Network identifier", networkID, { name: "network_id", hint: "routes with the same identifier and range form one HA set (max 40 characters)" }),
    field("Description", description, { name: "description" }),
    h("fieldset", { class: "field" }, h("legend", {}, "Destination"),
      h("div", { class: "check" }, typeRange, h("label", { for: "kind-range" }, "By range (CIDR)")),
      h("div", { class: "check" }, typeDomains, h("label", { for: "kind-domains" }, "By domain names"))),
    rangeBox, domainBox,
    h("fieldset", { class: "field" }, h("legend", {}, "Routed by"),
      h("div", { class: "check" }, viaPeer, h("label", { for: "via-peer" }, "A single routing peer")),
      h("div", { class: "check" }, viaGroup, h("label", { for: "via-group" }, "A group of routing peers (HA)"))),
    peerBox, groupBox,
    groups,
    field("Metric", metric, { name: "metric", hint: "1–9999; lower wins among routing peers" }),
    check(masquerade, "route-masquerade", "Masquerade (NAT on the routing peer)", "masquerade"),
    check(enabled, "route-enabled", "Enabled", "enabled"),
    check(autoApply, "route-auto-apply", "Auto-apply on clients", "skip_auto_apply"),
    acl,
    message,
    previewSlot,
    h("div", { class: "actions" },
      features.dryRun ? h("button", { type: "button", class: "secondary", onclick: () => runPreview() }, "Preview") : null,
      h("button", { type: "submit" }, existing ? "Save changes" : "Save")));
  sync();
  const fill = (route) => {
    networkID.value = route.network_id; description.value = route.description; metric.value = route.metric;
    masquerade.checked = route.masquerade; enabled.checked = route.enabled; autoApply.checked = !route.skip_auto_apply;
    for (const [box, values] of [[groups, route.groups], [acl, route.access_control_groups || []], [peerGroups, route.peer_groups || []]]) {
      for (const i of box.querySelectorAll("input[type=checkbox]")) i.checked = values.includes(i.value);
    }
    if (route.domains && route.domains.length) { typeDomains.checked = true; domains.value = route.domains.join(", "); } else { typeRange.checked = true; network.value = route.network; }
    if (route.peer) { viaPeer.checked = true; peer.value = route.peer; } else { viaGroup.checked = true; }
    keepRoute.checked = route.keep_route;
    sync();
  };
  const names = new Map([...data.peers.map((p) => [p.id, p.name]), ...data.groups.map((g) => [g.id, g.name])]);
  const path = existing ? `/api/routes/${encodeURIComponent(existing.route.id)}` : "/api/routes";
  const runPreview = async () => {
    clearErrors(form);
    previewSlot.replaceChildren();
    try {
      previewSlot.replaceChildren(await preview(existing ? "PUT" : "POST", path, { body: formBody(), ifMatch: etag, names }));
    } catch (error) {
      showError(form, error, { onReload: reloadCurrent });
    }
  };
  const formBody = () => {
    const body = {
      network_id: networkID.value.trim(), description: description.value, metric: metric.value === "" ? 0 : Number(metric.value),
      masquerade: masquerade.checked, enabled: enabled.checked, skip_auto_apply: !autoApply.checked,
      groups: checkedValues(groups, "groups"), access_control_groups: checkedValues(acl, "access_control_groups"),
      keep_route: typeDomains.checked && keepRoute.checked,
    };
    if (typeDomains.checked) body.domains = domains.value.split(/[,\s]+/).filter(Boolean); else body.network = network.value.trim();
    if (viaPeer.checked) body.peer = peer.value; else body.peer_groups = checkedValues(peerGroups, "peer_groups");
    return body;
  };
  const reloadCurrent = async () => {
    const current = await api("GET", `/api/routes/${encodeURIComponent(existing.route.id)}`);
    etag = current.etag;
    fill(current.data);
    clearErrors(form);
    toast("Loaded the current version; make your change again and save.");
    networkID.focus();
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = formBody();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const result = await api(existing ? "PUT" : "POST", path, { body, ifMatch: etag });
      dialog.close();
      toast(`Route ${result.data.network_id} ${existing ? "saved" : "created"}.`);
      const fresh = await load();
      await reloadPage(ctx.ctx || ctx, () => watchDelivery(result.sequence, affectedPeers(result.data, fresh), `${result.data.network_id} ${existing ? "saved" : "created"}`));
    } catch (error) {
      showError(form, error, { onReload: reloadCurrent });
    } finally {
      submit.disabled = false;
    }
  });
  const dialog = openDialog(existing ? `Edit route ${r.network_id}` : (preset ? `Add additional routing peer to ${preset.network_id}` : "Add Route"), form);
  dialog.classList.add("wide");
  return dialog;
}

/** Configure one network identifier: its routing peers (HA), each route's edit/enable/remove, drain. */
async function configure(networkID, ctx) {
  const data = await load();
  const ix = index(data);
  const routes = data.routes.filter((r) => r.network_id === networkID);
  if (routes.length === 0) { toast(`${networkID} has no routes any more.`); await reloadPage(ctx); return; }
  const list = h("ul", { class: "ha-list" }, routes.map((r) => {
    const peers = routingPeersOf(r, ix);
    return h("li", { dataset: { routeId: r.id } },
      h("div", { class: "ha-peer" },
        h("strong", {}, r.peer ? (ix.peerByID.get(r.peer)?.name || r.peer) : `peer group ${(r.peer_groups || []).map((g) => ix.groupByID.get(g)?.name || g).join(", ")}`),
        " ", h("span", { class: "muted" }, `${destination(r)} · metric ${r.metric}`), " ",
        r.enabled ? badge("enabled", "on") : badge("disabled", "off"),
        peers.map((id) => h("span", { class: "peer-state" }, " ", ix.peerByID.get(id)?.name || id, " ", peerState(ix.peerByID.get(id))))),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: async () => {
          const current = await api("GET", `/api/routes/${encodeURIComponent(r.id)}`);
          dialog.close();
          routeForm({ data, ix, ctx }, { route: current.data, etag: current.etag });
        } }, "Edit"),
        peers.map((id) => {
          const p = ix.peerByID.get(id);
          if (!p) return null;
          return h("button", { type: "button", class: "secondary", onclick: async () => { dialog.close(); await setDraining(p, !p.draining); await reloadPage(ctx); } },
            `${p.draining ? "Undrain" : "Drain"} ${p.name}`);
        }),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(`Remove routing peer ${r.peer ? ix.peerByID.get(r.peer)?.name : "group"} from ${networkID}?`)) return;
          try {
            const current = await api("GET", `/api/routes/${encodeURIComponent(r.id)}`);
            await api("DELETE", `/api/routes/${encodeURIComponent(r.id)}`, { ifMatch: current.etag });
            toast(`Removed a routing peer from ${networkID}.`);
          } catch (error) { toast(`Not removed: ${error.message}`); }
          dialog.close();
          await reloadPage(ctx);
        } }, "Remove")));
  }));
  const base = routes[0];
  const add = h("button", { type: "button", onclick: () => {
    dialog.close();
    routeForm({ data, ix, ctx }, null, { ...base, id: undefined, peer: "", peer_groups: null, metric: base.metric });
  } }, "Add additional routing peer");
  const dialog = openDialog(`Configure ${networkID}`, h("div", { class: "dialog-body" },
    h("p", {}, base.description || "", " ", badge(`HA ${new Set(routes.flatMap((r) => routingPeersOf(r, ix))).size}`, "")),
    list, h("div", { class: "actions" }, add)));
  dialog.classList.add("wide");
}

/** Drain or undrain a routing peer (`PUT /api/peers/{id}` with `draining`, If-Match from a fresh read). */
export async function setDraining(peer, draining) {
  try {
    const current = await api("GET", `/api/peers/${encodeURIComponent(peer.id)}`);
    await api("PUT", `/api/peers/${encodeURIComponent(peer.id)}`, { body: { name: current.data.name, draining }, ifMatch: current.etag });
    toast(`${peer.name} ${draining ? "is draining: clients move to other routing peers" : "is no longer draining"}.`);
    return true;
  } catch (error) {
    toast(`${peer.name} not changed: ${error.message}`);
    return false;
  }
}
