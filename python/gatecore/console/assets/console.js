// gatecore console: sends the page's forms and buttons to the admin API as JSON, with the session's
// CSRF token; shows a new key's secret once; reloads the page after any other change. No framework.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const token = csrf ? csrf.content : "";

  function value(input) {
    const kind = input.dataset.kind || "text";
    const text = input.value.trim();
    if (text === "") return undefined;
    if (kind === "int") return parseInt(text, 10);
    if (kind === "number") return parseFloat(text);
    if (kind === "list") return text.split(",").map((s) => s.trim()).filter((s) => s);
    return text;
  }

  async function call(method, path, body) {
    const init = { method: method, credentials: "same-origin", headers: { "x-csrf-token": token } };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : response.status + " " + response.statusText;
      throw new Error(message);
    }
    return data;
  }

  function reveal(data) {
    const box = document.querySelector(".secret");
    if (!box) return false;
    const out = box.querySelector("output");
    if (data && data.key) {
      out.textContent = data.key;
    } else {
      out.textContent = "Already shown once; only the prefix is kept: " + ((data && data.prefix) || "");
    }
    box.hidden = false;
    box.focus();
    return true;
  }

  function done(element, data, status) {
    if (element.dataset.reveal && reveal(data)) return;
    if (status) status.textContent = "Done.";
    window.location.reload();
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.classList.contains("api")) return;
    event.preventDefault();
    const status = form.querySelector(".result");
    const body = {};
    for (const input of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      const v = value(input);
      if (v !== undefined) body[input.name] = v;
    }
    try {
      const data = await call(form.dataset.method, form.dataset.path, body);
      form.reset();
      done(form, data, status);
    } catch (error) {
      status.textContent = "Refused: " + error.message;
    }
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button.api-call");
    if (!button) return;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    try {
      const data = await call(button.dataset.method, button.dataset.path, undefined);
      done(button, data, null);
    } catch (error) {
      button.disabled = false;
      button.textContent = "Refused: " + error.message;
    }
  });
})();
