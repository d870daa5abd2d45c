// DOM helpers: elements are built with createElement and text nodes (API data is never parsed as HTML), dialogs are native
// <dialog>s (focus kept inside, Escape closes), field errors sit next to the field the API named.

/** `h("button", {class: "x", onclick: f}, "text", child…)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let uniq = 0;
export function uid(prefix) { uniq += 1; return `${prefix}-${uniq}`; }

/** A labelled control with an error slot: `field(label, input, {name, hint})`; `name` is the API's field name. */
export function field(label, input, { name, hint } = {}) {
  if (!input.id) input.id = uid("f");
  const error = h("p", { class: "field-error", id: `${input.id}-error`, hidden: true });
  const described = [hint ? `${input.id}-hint` : null, error.id].filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", described);
  return h("div", { class: "field", dataset: name ? { field: name } : {} },
    h("label", { for: input.id }, label),
    input,
    hint ? h("p", { class: "hint", id: `${input.id}-hint` }, hint) : null,
    error);
}

/** A fieldset of checkboxes (multi-select that works with Tab and Space): `checkboxes(legend, name, items, selected)`. */
export function checkboxes(legend, name, items, selected = []) {
  const chosen = new Set(selected);
  const error = h("p", { class: "field-error", id: uid("err"), hidden: true });
  const box = h("fieldset", { class: "field checks", dataset: { field: name } },
    h("legend", {}, legend),
    items.length === 0 ? h("p", { class: "hint" }, "none yet") : null,
    items.map((item) => {
      const id = uid("c");
      return h("div", { class: "check" },
        h("input", { type: "checkbox", id, value: item.id, name, checked: chosen.has(item.id), "aria-describedby": error.id }),
        h("label", { for: id }, item.label));
    }),
    error);
  return box;
}

export function checkedValues(root, name) {
  return [...root.querySelectorAll(`input[type=checkbox][name="${name}"]:checked`)].map((i) => i.value);
}

/** Clears every field error and the form's message. */
export function clearErrors(form) {
  for (const e of form.querySelectorAll(".field-error")) { e.hidden = true; e.textContent = ""; }
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  const message = form.querySelector(".form-message");
  if (message) { message.hidden = true; message.replaceChildren(); }
}

/**
 * Shows an API error: next to the field it names (`field` in the body) when the form has it, else in the form's
 * message area; a 412 says someone else changed the object and offers `onReload`. Returns the element showing it.
 */
export function showError(form, error, { onReload, fieldAliases = {} } = {}) {
  const conflict = isConflict(error);
  const name = fieldAliases[error.field] || error.field;
  const holder = name && !conflict ? form.querySelector(`[data-field="${CSS.escape(name)}"]`) : null;
  if (holder) {
    const slot = holder.querySelector(".field-error");
    slot.textContent = error.message;
    slot.hidden = false;
    const input = holder.querySelector("input, select, textarea");
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    return slot;
  }
  const message = form.querySelector(".form-message");
  message.replaceChildren();
  if (conflict) {
    message.append(h("strong", {}, "Someone else changed this since you opened it. "),
      "Your changes were not saved. ",
      onReload ? h("button", { type: "button", class: "secondary", onclick: onReload }, "Reload the current version") : null);
  } else {
    message.append(error.message + (error.requestID && error.status >= 500 ? ` (request id ${error.requestID})` : ""));
  }
  message.hidden = false;
  message.focus();
  return message;
}

/** A write refused because the object changed since the edit began (`If-Match` no longer matches). */
export function isConflict(error) { return error.status === 412 && error.field === "If-Match"; }

export function formMessage() { return h("div", { class: "form-message", role: "alert", tabindex: "-1", hidden: true }); }

/** A modal dialog with a title, the content, and a Close button; removed from the page when closed. */
export function openDialog(title, content, { onClose } = {}) {
  const titleID = uid("dlg");
  const dialog = h("dialog", { "aria-labelledby": titleID },
    h("div", { class: "dialog-head" },
      h("h2", { id: titleID }, title),
      h("button", { type: "button", class: "icon", "aria-label": "Close", onclick: () => dialog.close() }, "×")),
    content);
  dialog.addEventListener("close", () => { dialog.remove(); if (onClose) onClose(); });
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector("input:not([type=hidden]), select, textarea, .dialog-body button");
  if (first) first.focus();
  return dialog;
}

let toastTimer = null;
/** A short note in the live region (read by screen readers). */
export function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

export function badge(text, kind) { return h("span", { class: `badge ${kind || ""}` }, text); }

export function yesNo(value) { return value ? badge("yes", "on") : badge("no", "off"); }

/** A table inside a horizontally scrolling wrapper (narrow windows scroll the table, not the page). */
export function table(caption, headings, rows, attrs = {}) {
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", attrs,
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headings.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
}

export function time(iso) {
  if (!iso || iso.startsWith("0001-")) return "never";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

export function pageHeader(title, ...actions) {
  return h("div", { class: "page-head" }, h("h2", { id: "page-title", tabindex: "-1" }, title), h("div", { class: "actions" }, actions));
}
