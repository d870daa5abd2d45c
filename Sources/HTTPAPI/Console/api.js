// The console's one door to the REST API: every call carries the token the user pasted (kept in this tab's
// sessionStorage only), and every answer is the API's own — status, {message, code, field}, ETag, sequence.
const TOKEN_KEY = "routeplane.token";

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(value) { sessionStorage.setItem(TOKEN_KEY, value); }
export function signOut() { sessionStorage.removeItem(TOKEN_KEY); }

/** An answer that is not 2xx: `status`, the API's `message`, `code` and `field` (the field at fault), request id. */
export class APIError extends Error {
  constructor(status, body, requestID) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
    this.requestID = requestID;
  }
}

/**
 * `api("GET", "/api/routes")` → {data, etag, sequence, headers}. `ifMatch`: the ETag the user's edit started from, so a
 * change by someone else in between answers 412 instead of being overwritten.
 */
export async function api(method, path, { body, ifMatch } = {}) {
  const headers = { "Accept": "application/json" };
  const t = token();
  if (t) headers["Authorization"] = `Token ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (ifMatch) headers["If-Match"] = ifMatch;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch (e) {
    throw new APIError(0, { message: "the controller did not answer (network error); try again" });
  }
  const text = await response.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = null; } }
  const requestID = response.headers.get("X-Request-Id");
  if (!response.ok) {
    const error = new APIError(response.status, data, requestID);
    if (response.status === 401) window.dispatchEvent(new CustomEvent("routeplane:unauthorized", { detail: error }));
    throw error;
  }
  const sequence = response.headers.get("X-Routeplane-Sequence");
  return { data, etag: response.headers.get("ETag"), sequence: sequence === null ? null : Number(sequence), headers: response.headers };
}

/**
 * What this controller's API offers beyond the base console, read once from its OpenAPI document (public): the
 * History page needs `GET /api/history/diff` and `as_of=` on reads; the preview before Save needs `dry_run=` on writes.
 * A controller without them shows neither.
 */
export const features = { history: false, dryRun: false };
export async function detectFeatures() {
  try {
    const response = await fetch("/api/openapi.json", { cache: "no-store" });
    const doc = await response.json();
    const paths = doc.paths || {};
    const params = (op) => (op && op.parameters ? op.parameters : []).map((p) => p.name);
    features.history = !!paths["/api/history/diff"] && params((paths["/api/routes"] || {}).get).includes("as_of");
    features.dryRun = params((paths["/api/routes"] || {}).post).includes("dry_run");
  } catch {
    // An older controller, or the document did not load: the base console only.
  }
  return features;
}
