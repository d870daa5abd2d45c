// The console's shell: sign-in with a pasted API token (sessionStorage only), the page navigation (hash routes, so
// the controller serves one page), and which module renders which page.
import { api, token, setToken, signOut, APIError, features, detectFeatures } from "./api.js";
import { h, field, formMessage, showError, clearErrors, toast } from "./ui.js";
import { renderRoutes } from "./routes.js";
import { renderGroups, renderPeers, renderSetupKeys } from "./pages.js";
import { renderAudit } from "./audit.js";
import { renderHistory } from "./history.js";

const pages = {
  "routes": { title: "Network Routes", render: renderRoutes },
  "groups": { title: "Groups", render: renderGroups },
  "peers": { title: "Peers", render: renderPeers },
  "setup-keys": { title: "Setup keys", render: renderSetupKeys },
  "audit": { title: "Audit log", render: renderAudit },
};

const main = document.getElementById("main");
let renderCount = 0;

function currentPage() {
  const name = (location.hash.replace(/^#\/?/, "").split("?")[0]) || "routes";
  return pages[name] ? name : "routes";
}

function signInView(problem) {
  document.getElementById("nav").hidden = true;
  document.getElementById("session").replaceChildren();
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const message = formMessage();
  const form = h("form", { class: "card signin", novalidate: true },
    h("h2", { id: "page-title", tabindex: "-1" }, "Sign in"),
    h("p", {}, "Paste an API token of your tenant (", h("code", {}, "routeplane tokens create --tenant ID"),
      "). It is kept in this browser tab only and sent with every API call; what it may do is the API's decision."),
    field("API token", input, { name: "token" }),
    message,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const value = input.value.trim();
    if (!value) { showError(form, new APIError(0, { message: "paste a token", field: "token" })); return; }
    setToken(value);
    try {
      await api("GET", "/api/users");
      route();
    } catch (error) {
      signOut();
      showError(form, error.status === 401 ? new APIError(401, { message: `${error.message}`, field: "token" }) : error);
    }
  });
  main.replaceChildren(form);
  if (problem) showError(form, problem);
  input.focus();
}

async function route() {
  if (!token()) { signInView(); return; }
  document.getElementById("nav").hidden = false;
  const session = document.getElementById("session");
  session.replaceChildren(h("button", { type: "button", class: "secondary", onclick: () => { signOut(); signInView(); } }, "Sign out"));
  const name = currentPage();
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = `${pages[name].title} · Routeplane console`;
  const mine = ++renderCount;
  const container = h("div", { class: "page", dataset: { page: name } });
  main.replaceChildren(container);
  try {
    await pages[name].render(container, { isCurrent: () => mine === renderCount });
  } catch (error) {
    if (mine !== renderCount) return;
    container.replaceChildren(h("div", { class: "card error", role: "alert" }, `Could not load ${pages[name].title}: ${error.message}`,
      h("div", { class: "actions" }, h("button", { type: "button", onclick: route }, "Retry"))));
  }
}

window.addEventListener("routeplane:unauthorized", (e) => {
  if (document.querySelector("form.signin")) return; // the sign-in form shows its own refusal
  signOut();
  signInView(e.detail);
  toast("The token was refused; sign in again.");
});
window.addEventListener("hashchange", () => { route(); });
detectFeatures().then(() => {
  if (features.history) {
    pages["history"] = { title: "History", render: renderHistory };
    document.getElementById("nav").append(h("a", { href: "#/history" }, "History"));
  }
  route();
});
