// sohoa: the case ID (mã hồ sơ) checked in the browser exactly as models/case_id.py checks it, with the
// same sentences, so the desk says which part is wrong before anything is uploaded.
"use strict";
window.sohoaCaseId = (() => {
  const SHAPE = "000.00.01.H56-181010-0001";
  const AGENCY = /^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[HG][0-9]{2}$/;
  const FULL = /^([0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[HG][0-9]{2})-([0-9]{6})-([0-9]{4})$/;
  // White space around the ID and the case of the H/G letter are normalised, as the server does.
  const normalise = (text) => text.trim().replace(/\.([hg])([0-9]{2})-/, (_, l, d) => `.${l.toUpperCase()}${d}-`);
  const wrongPart = (candidate) => {
    const parts = candidate.split("-");
    if (parts.length !== 3) {
      return [`it has ${parts.length} part(s) separated by '-' instead of 3`,
        `mã có ${parts.length} phần ngăn bởi dấu '-' thay vì 3 phần`];
    }
    const [agency, day, seq] = parts;
    if (!AGENCY.test(agency)) {
      return [`the agency code '${agency}' should look like 000.00.01.H56`,
        `phần mã cơ quan '${agency}' phải có dạng 000.00.01.H56`];
    }
    if (!/^[0-9]{6}$/.test(day)) return [`the date part '${day}' should be 6 digits yymmdd`, `phần ngày tiếp nhận '${day}' phải là 6 chữ số yymmdd`];
    if (!/^[0-9]{4}$/.test(seq)) return [`the sequence number '${seq}' should be 4 digits`, `phần số thứ tự '${seq}' phải là 4 chữ số`];
    return ["", ""];
  };
  const realDate = (yymmdd) => {
    const yy = Number(yymmdd.slice(0, 2));
    const year = yy < 69 ? 2000 + yy : 1900 + yy; // Python's %y
    const month = Number(yymmdd.slice(2, 4));
    const day = Number(yymmdd.slice(4, 6));
    const d = new Date(Date.UTC(year, month - 1, day));
    return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
  };
  const refusal = (text, reasonEn, reasonVi) => {
    let en = `'${text}' is not a valid case ID: expected the shape ${SHAPE} (agency code-yymmdd-sequence)`;
    let vi = `'${text}' không phải mã hồ sơ hợp lệ: cần có dạng ${SHAPE} (mã cơ quan-yymmdd-số thứ tự)`;
    if (reasonEn) { en += `; ${reasonEn}`; vi += `; ${reasonVi}`; }
    return { ok: false, message_vi: `${vi}.`, message_en: `${en}.` };
  };
  // {ok: true, value} with the normalised ID, or {ok: false, message_vi, message_en}.
  const check = (text) => {
    const candidate = normalise(text);
    const m = FULL.exec(candidate);
    if (!m) {
      const [en, vi] = wrongPart(candidate);
      return refusal(text, en, vi);
    }
    if (!realDate(m[2])) return refusal(text, "the date part is not a real calendar date", "phần ngày tiếp nhận không phải ngày có thật");
    if (Number(m[3]) === 0) return refusal(text, "the sequence number must be 0001 or more", "số thứ tự phải từ 0001 trở lên");
    return { ok: true, value: candidate };
  };
  return { check, normalise };
})();
