// sohoa: the only script, served by the app (the CSP allows no inline script).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("api-endpoints");
  if (!box) return;
  fetch(box.dataset.spec, { credentials: "same-origin" })
    .then((r) => r.json())
    .then((spec) => {
      box.textContent = "";
      for (const [path, ops] of Object.entries(spec.paths || {})) {
        for (const [method, op] of Object.entries(ops)) {
          const div = document.createElement("div");
          div.className = "ep";
          const m = document.createElement("span");
          m.className = "method";
          m.textContent = method.toUpperCase();
          const p = document.createElement("code");
          p.textContent = path;
          const s = document.createElement("p");
          s.textContent = op.summary || "";
          const params = (op.parameters || []).map((x) => x.name + (x.required ? "*" : "")).join(", ");
          const q = document.createElement("p");
          q.className = "muted";
          q.textContent = params ? "Tham số (parameters): " + params : "";
          div.append(m, p, s, q);
          box.append(div);
        }
      }
    })
    .catch(() => { box.textContent = "Không tải được đặc tả (could not load the spec)."; });
});
