// The preview before Save: the same write with `?dry_run=true` (nothing is appended) answers the events it would
// append, the peers it reaches and each peer's view diff; shown as "this change reaches N peers" with the diffs.
// Offered only when the controller's API takes dry_run (features.dryRun).
import { api } from "./api.js";
import { h } from "./ui.js";
import { renderDiff } from "./history.js";

/** Runs the dry run of `method path` with `body`/`ifMatch`; returns an element describing its outcome. Throws the
 *  API's error (a validation error or a 412 is the same as the real call's), for the form to show at its field. */
export async function preview(method, path, { body, ifMatch, names }) {
  const separator = path.includes("?") ? "&" : "?";
  const answer = await api(method, `${path}${separator}dry_run=true`, { body, ifMatch });
  const data = answer.data || {};
  const affected = Array.isArray(data.affected_peers) ? data.affected_peers.length : (typeof data.affected_peers === "number" ? data.affected_peers : null);
  const events = Array.isArray(data.events) ? data.events.length : null;
  return h("div", { class: "dry-run", role: "status" },
    h("p", {}, h("strong", {}, affected === null ? "Preview" : `This change reaches ${affected} peer${affected === 1 ? "" : "s"}`),
      events === null ? null : ` · ${events} event${events === 1 ? "" : "s"} would be recorded`),
    renderDiff(data, names));
}
