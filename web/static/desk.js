// sohoa scanning desk: upload scans, show each page's verdict as it arrives, replace a page, store.
// Served by the app (the CSP allows no inline script); talks only to /api/v1 on the same origin.
"use strict";
(() => {
  const root = document.getElementById("desk");
  if (!root) return;
  const csrf = root.dataset.csrf || "";
  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    Object.assign(node, props);
    for (const c of children) node.append(c);
    return node;
  };
  const STATUS = {
    received: "Đã nhận", checking: "Đang kiểm tra từng trang", checked: "Đã kiểm tra",
    waiting: "Đang chờ", processing: "Đang nhận dạng chữ (OCR)", stored: "Đã lưu",
    spooled: "Chờ kho lưu trữ", failed: "Lỗi",
  };
  const DOC_STATUS = {
    planned: "chờ xử lý", processing: "đang nhận dạng chữ", stored: "đã lưu", "already-stored": "đã lưu trước đó",
    failed: "lỗi", refused: "không lưu", "needs-case-id": "chưa có mã hồ sơ", spooled: "chờ kho lưu trữ",
  };
  // A stack uploaded without a typed case ID: the cases its cover sheets named.
  const caseOf = (job) => job.case_id || [...new Set((job.documents || []).map((d) => d.case_id).filter(Boolean))].join(", ");
  let files = [];
  let current = null; // job id being followed
  let timer = null;
  const FINAL = ["stored", "failed"];
  // Polling is the page's own doing, not the operator's: it must not keep the session alive.
  const BACKGROUND = { credentials: "same-origin", cache: "no-store", headers: { "X-Sohoa-Background": "1" } };
  const signedOut = () => { window.location.assign("/sign-in?ended=1&next=%2Fdesk"); };
  // One place for what went wrong (cleared by the next action), apart from the progress line.
  const showProblem = (text) => {
    const p = $("upload-problem");
    p.textContent = text || "";
    p.hidden = !text;
  };
  const emptyFile = (f) => `Tệp ${f.name} rỗng (0 byte): máy quét chưa ghi xong; hãy quét lại. (${f.name} is empty (0 bytes): the scanner did not finish writing it; scan the pages again.)`;

  // ------------------------------------------------------------------ choosing files
  const showChosen = () => {
    const list = $("chosen");
    list.textContent = "";
    for (const f of files) list.append(el("li", { textContent: `${f.name} (${f.size ? Math.ceil(f.size / 1024) + " KB" : "0 byte, rỗng"})` }));
    const empty = files.find((f) => f.size === 0);
    showProblem(empty ? emptyFile(empty) : "");
  };
  $("files").addEventListener("change", (e) => { files = Array.from(e.target.files); showChosen(); });
  const drop = $("drop");
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => { files = Array.from(e.dataTransfer.files); showChosen(); });

  // ------------------------------------------------------------------ upload with a progress bar
  const send = (url, form, onProgress) => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.responseType = "json";
    if (onProgress) xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener("load", () => (xhr.status >= 200 && xhr.status < 300 ? resolve(xhr.response) : reject(xhr)));
    xhr.addEventListener("error", () => reject(xhr));
    xhr.send(form);
  });
  // Every refusal as one sentence: the server's own when it gave one, else what the status means here.
  const problem = (xhr, caseId) => {
    const r = xhr && xhr.response;
    if (r && r.message_vi) return `${r.message_vi} (${r.message_en})`;
    const status = xhr ? xhr.status : 0;
    if (status === 401) return "Phiên làm việc đã hết hạn, hãy đăng nhập lại (your session expired; sign in again).";
    if (status === 403) return "Bạn không có quyền gửi bản quét cho hồ sơ này (you may not upload to this case).";
    if (status === 404) {
      return caseId
        ? `Không có hồ sơ ${caseId} trong các đơn vị của bạn: kiểm tra lại mã hồ sơ. (No case ${caseId} in your units: check the case ID.)`
        : "Không tìm thấy lượt quét này nữa; hãy tải lên lại. (This scan job is no longer there; upload again.)";
    }
    if (status === 409 || status === 422 || status === 400 || status === 413 || status === 415) {
      return "Máy chủ không nhận yêu cầu này; kiểm tra mã hồ sơ và tệp rồi gửi lại. (The server refused the request; check the case ID and the files.)";
    }
    if (status >= 500) return "Máy chủ đang gặp sự cố; bản quét chưa được nhận, hãy thử lại sau ít phút. (Server error; nothing was received, try again in a few minutes.)";
    return "Mất kết nối tới máy chủ; bản quét chưa được nhận, hãy kiểm tra mạng rồi gửi lại. (No connection to the server; nothing was received.)";
  };

  // A new upload: the last job's card (and its error) is no longer what the operator is looking at.
  const forget = () => {
    current = null;
    if (timer) clearTimeout(timer);
    if (source) { source.close(); source = null; }
    $("job").hidden = true;
    $("upload-progress").hidden = true;
  };

  $("upload-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = $("upload-status");
    status.textContent = "";
    showProblem("");
    forget();
    const typed = $("case").value;
    const stack = $("review").checked;
    let caseId = "";
    if (typed.trim()) {
      const verdict = window.sohoaCaseId.check(typed);
      if (!verdict.ok) { showProblem(`${verdict.message_vi} (${verdict.message_en})`); $("case").focus(); return; }
      caseId = verdict.value;
      $("case").value = caseId;
    } else if (!stack) {
      showProblem("Hãy nhập mã hồ sơ, hoặc đánh dấu \"Xấp có tờ bìa\" để chia theo tờ bìa. (Enter the case ID, or tick \"Stack with cover sheets\".)");
      $("case").focus();
      return;
    }
    if (!files.length) { showProblem("Hãy chọn tệp bản quét. (Choose the scan files.)"); return; }
    const empty = files.find((f) => f.size === 0);
    if (empty) { showProblem(emptyFile(empty)); return; }
    const form = new FormData();
    for (const f of files) form.append("files", f, f.name);
    if ($("kind").value.trim()) form.append("kind", $("kind").value.trim());
    form.append("on_rescan", "hold");
    form.append("review_split", $("review").checked ? "1" : "0");
    const bar = $("upload-progress");
    bar.hidden = false; bar.value = 0;
    $("send").disabled = true;
    status.textContent = "Đang tải lên… (uploading)";
    try {
      const unit = $("unit") ? $("unit").value : root.dataset.unit;
      const url = caseId ? `/api/v1/cases/${encodeURIComponent(caseId)}/scans` : `/api/v1/scans?unit=${encodeURIComponent(unit)}`;
      const res = await send(url, form, (p) => { bar.value = Math.round(p * 100); });
      bar.value = 100;
      status.textContent = "Đã tải lên, đang kiểm tra từng trang… (uploaded, checking)";
      files = []; $("files").value = ""; showChosen();
      follow(res.job_id);
      refreshToday();
    } catch (xhr) {
      bar.hidden = true;  // nothing was received: no bar left half-full beside the refusal
      status.textContent = "";
      if (xhr && xhr.status === 401) { signedOut(); return; }
      showProblem(problem(xhr, caseId));
    } finally {
      $("send").disabled = false;
    }
  });

  // ------------------------------------------------------------------ following a job
  // The job is pushed by the server (server-sent events); polling is the fallback if events fail.
  let source = null;
  const follow = (jobId) => {
    current = jobId;
    if (timer) clearTimeout(timer);
    if (source) source.close();
    if (!window.EventSource) { poll(); return; }
    source = new EventSource(`/api/v1/jobs/${jobId}/events`);
    source.addEventListener("job", (e) => { if (jobId === current) render(JSON.parse(e.data)); });
    source.addEventListener("end", () => { source.close(); source = null; });
    source.addEventListener("error", () => {
      if (source && source.readyState === EventSource.CLOSED) { source = null; poll(); }
    });
  };
  const poll = async () => {
    if (!current) return;
    const jobId = current;
    let job = null;
    try {
      const r = await fetch(`/api/v1/jobs/${jobId}`, BACKGROUND);
      if (r.status === 401) { signedOut(); return; }
      if (r.status === 404) { showProblem(problem({ status: 404 })); return; } // gone: say so, stop asking
      if (r.ok) job = await r.json();
    } catch (_) { /* network hiccup: try again */ }
    if (job && jobId === current) render(job);
    const done = job && FINAL.includes(job.status);
    if (!done) timer = setTimeout(poll, 1000);
  };

  const render = (job) => {
    $("job").hidden = false;
    $("job-case").textContent = caseOf(job);
    $("job-id").textContent = job.id;
    const badge = $("job-status");
    badge.textContent = STATUS[job.status] || job.status;
    badge.className = `badge ${job.status}`;
    // The progress line speaks of the upload or replacement only while its pages are being checked;
    // after that the badge and the job's message say where the job is.
    if (!["received", "checking"].includes(job.status)) {
      $("upload-status").textContent = "";
      $("upload-progress").hidden = true;
    }
    renderTodayRow(job);
    if (FINAL.includes(job.status)) refreshToday();
    const err = job.error || {};
    $("job-message").textContent = err.message_vi ? `${err.message_vi} (${err.message_en || ""})` : "";
    const hold = job.status === "checked" && job.hold;
    $("hold").hidden = !hold;
    if (hold) $("hold-message").textContent = `${job.hold.message_vi} (${job.hold.message_en})`;
    renderSplit(job);
    renderPages(job);
    renderDocuments(job);
  };

  const renderSplit = (job) => {
    const segs = (job.stack && job.stack.segments) || [];
    const split = segs.some((s) => s.sheet_page !== null) || ((job.stack && job.stack.issues) || []).length;
    $("split").hidden = !split;
    const list = $("segments");
    list.textContent = "";
    for (const s of segs) {
      const last = s.pages[s.pages.length - 1];
      const span = !s.pages.length ? "không có trang nào"
        : s.pages.length === 1 ? `trang ${last} (1 trang)` : `trang ${s.pages[0]}–${last} (${s.pages.length} trang)`;
      const sheet = s.sheet_page ? `, tờ bìa ở trang ${s.sheet_page}` : "";
      list.append(el("li", { textContent: `${s.case_id || "CHƯA CÓ MÃ HỒ SƠ"}: ${span}${sheet}` }));
    }
    for (const i of (job.stack && job.stack.issues) || []) list.append(el("li", { className: "error", textContent: `${i.message_vi} (${i.message_en})` }));
  };

  const renderPages = (job) => {
    const box = $("pages");
    const editable = ["received", "checking", "checked", "waiting"].includes(job.status);
    const key = JSON.stringify(job.pages.map((p) => [p.number, p.version, p.status])) + editable;
    if (box.dataset.key === key) return; // nothing changed: keep the file inputs as they are
    box.dataset.key = key;
    box.textContent = "";
    for (const p of job.pages) {
      const card = el("figure", { className: `page ${p.status !== "checked" ? "" : p.needs_rescan ? "rescan" : "ok"}` });
      card.dataset.page = p.number;
      if (p.thumbnail) card.append(el("img", { src: p.thumbnail, alt: `trang ${p.number}` }));
      card.append(el("figcaption", { className: "verdict", textContent: p.sentence_vi }));
      if (editable && p.status === "checked") {
        const input = el("input", { type: "file", accept: ".pdf,.tif,.tiff,.jpg,.jpeg,.png" });
        input.dataset.replace = p.number;
        input.addEventListener("change", () => replacePage(job.id, p.number, input.files[0]));
        card.append(el("label", { className: "replace" }, `Thay trang ${p.number} (replace page): `, input));
      }
      box.append(card);
    }
  };

  const renderDocuments = (job) => {
    const box = $("documents");
    box.textContent = "";
    for (const d of job.documents) {
      const row = el("div", { className: "doc" });
      row.append(el("strong", { textContent: `${d.case_id || "chưa có mã hồ sơ"}: ` }),
        `${d.pages.length} trang, ${DOC_STATUS[d.status] || d.status}`);
      if (d.status === "processing") {
        row.append(" ", el("progress", { max: d.pages.length, value: d.pages_done }), ` OCR ${d.pages_done}/${d.pages.length}`);
      }
      if (d.links) {
        row.append(" · ", el("a", { href: d.links.page, textContent: "Mở hồ sơ điện tử (open)" }),
          " · ", el("a", { href: d.links.searchable_pdf, textContent: "PDF tìm kiếm được", target: "_blank" }));
      }
      if (d.message_vi) row.append(el("p", { className: "error", textContent: `${d.message_vi} (${d.message_en})` }));
      box.append(row);
    }
  };

  const replacePage = async (jobId, number, file) => {
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    showProblem("");
    if (file.size === 0) { showProblem(emptyFile(file)); return; }
    $("upload-status").textContent = `Đang thay trang ${number}… (replacing page ${number})`;
    try {
      const job = await send(`/api/v1/jobs/${jobId}/pages/${number}`, form);
      $("upload-status").textContent = `Đã thay trang ${number}, đang kiểm tra lại (page ${number} replaced, checking)`;
      render(job);
      follow(jobId);
    } catch (xhr) {
      $("upload-status").textContent = "";
      if (xhr && xhr.status === 401) { signedOut(); return; }
      showProblem(problem(xhr));
    }
  };

  $("store-anyway").addEventListener("click", async () => {
    if (!current) return;
    showProblem("");
    try {
      render(await send(`/api/v1/jobs/${current}/store`, new FormData()));
      follow(current);
    } catch (xhr) {
      if (xhr && xhr.status === 401) { signedOut(); return; }
      showProblem(problem(xhr));
    }
  });

  // ------------------------------------------------------------------ today at this counter, receipts
  // The followed job's row says what its card says (the list itself is refreshed every 5 s).
  let shown = null;
  const renderTodayRow = (job) => {
    shown = job;
    const row = document.querySelector(`#today tr[data-job="${job.id}"]`);
    if (!row) return;
    const cell = row.children[3];
    const err = job.error && job.error.message_vi ? ` — ${job.error.message_vi}` : "";
    cell.textContent = `${STATUS[job.status] || job.status}${err}`;
    cell.className = job.status;
  };
  const refreshToday = async () => {
    let data = null;
    try {
      const r = await fetch("/api/v1/desk/today", BACKGROUND);
      if (r.status === 401) { signedOut(); return; }
      if (r.ok) data = await r.json();
    } catch (_) { return; }
    if (!data) return;
    const body = $("today");
    body.textContent = "";
    for (const j of data.jobs) {
      const err = j.error && j.error.message_vi ? ` — ${j.error.message_vi}` : "";
      const open = el("button", { type: "button", textContent: "Xem (show)" });
      open.addEventListener("click", () => follow(j.id));
      const row = el("tr", {},
        el("td", { textContent: (j.created || "").slice(11, 16) }),
        el("td", { textContent: caseOf(j) || "–" }),
        el("td", { textContent: j.files.map((f) => f.name).join(", ") }),
        el("td", { textContent: `${STATUS[j.status] || j.status}${err}`, className: j.status }),
        el("td", {}, open));
      row.dataset.job = j.id;
      body.append(row);
      if (j.id === current && shown) renderTodayRow(shown); // the card is newer than this list
    }
    const list = $("receipts");
    list.textContent = "";
    for (const c of data.receipts) list.append(el("option", { value: c }));
  };
  refreshToday();
  setInterval(refreshToday, 5000);

  // ------------------------------------------------------------------ cover sheets
  $("sheets-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const box = $("sheets-problem");
    box.hidden = true;
    const ids = $("sheet-cases").value.split(/\n/).map((s) => s.trim()).filter(Boolean);
    if (!ids.length && $("case").value.trim()) ids.push($("case").value.trim());
    if (!ids.length) {
      box.textContent = "Hãy nhập ít nhất một mã hồ sơ. (Enter at least one case ID.)";
      box.hidden = false;
      return;
    }
    for (let i = 0; i < ids.length; i += 1) {
      const verdict = window.sohoaCaseId.check(ids[i]);
      if (!verdict.ok) {
        box.textContent = `${verdict.message_vi} (${verdict.message_en})`;
        box.hidden = false;
        return;
      }
      ids[i] = verdict.value;
    }
    const q = ids.map((c) => `case=${encodeURIComponent(c)}`).join("&");
    window.open(`/desk/coversheets.pdf?${q}`, "_blank", "noopener");
  });
})();
