"""The desk and the handlers' pages as a new operator and handler meet them (issue 21, items 11–20).

Real ``sohoa serve`` subprocesses on private copies of the seeded data; Chromium (Debian's, through
Playwright) for what the operator sees; the intake service and the session's Prefect server where a
scan must really be checked and stored. Screenshots go to tests/artifacts/desk21-*.png.
"""
from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from tests.test_desk import sheet, text_page, write_stack
from tests.test_desk_web import UNIT, WAIT, follow, jpeg, own_copy, start_desk_server, token
from tests.web_fixtures import ARTIFACTS, CASE_A, PASSWORD, WebServer, signed_in

STACK_CASE = "000.00.14.H56-261130-0021"
TYPED_CASE = "000.00.14.H56-261130-0022"


@pytest.fixture(scope="module")
def counter(web_data, tmp_path_factory):
    """``sohoa serve`` without the intake service on its own copy of the seeded data (nothing is stored)."""
    server = WebServer(env=own_copy(web_data, tmp_path_factory.mktemp("counter") / "sohoa-data"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def desk(prefect_harness, web_data, tmp_path_factory):
    server = start_desk_server(web_data, tmp_path_factory.mktemp("desk21") / "sohoa-data")
    yield server
    server.stop()


def sign_in(browser, server: WebServer, name: str, target: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{server.url}{target}")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"**{target}")
    return context, page


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"desk21-{name}.png", full_page=True)


# ------------------------------------------------------------------------------------------ 11
def test_pages_that_show_a_dossier_are_not_stored_and_back_after_sign_out_shows_the_sign_in_page(browser,
                                                                                                   counter):
    with signed_in(counter.url, "lan") as lan:
        doc = re.search(r'href="(/cases/[^"]+/documents/[^"]+)"', lan.get(f"/cases/{CASE_A}").text).group(1)
        for path in (f"/cases/{CASE_A}", doc, "/cases", "/search?q=UBND", f"/api/v1/cases/{CASE_A}"):
            r = lan.get(path)
            assert r.status_code == 200 and r.headers["cache-control"] == "no-store", (path, r.headers)
    with signed_in(counter.url, "hoa") as hoa:
        assert hoa.get("/desk").headers["cache-control"] == "no-store"

    context, page = sign_in(browser, counter, "lan", f"/cases/{CASE_A}")
    assert CASE_A in page.inner_text("main")
    page.click("form.signout button")
    page.wait_for_url("**/sign-in")
    page.go_back()
    page.wait_for_load_state()
    shot(page, "11-back-after-sign-out")
    assert "/sign-in" in page.url and CASE_A not in page.inner_text("main"), page.url
    context.close()


# ------------------------------------------------------------------------------------------ 12, 13
def test_case_id_mistakes_and_empty_files_are_named_before_the_upload_starts(browser, counter, tmp_path):
    scan = tmp_path / "don.jpg"
    scan.write_bytes(jpeg("OSCAR"))
    empty = tmp_path / "trang-rong.jpg"
    empty.write_bytes(b"")
    context, page = sign_in(browser, counter, "hoa", "/desk")
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" and "/scans" in r.url else None)

    page.fill("#case", "000.00.14.H56-261330-0001")  # month 13
    page.set_input_files("#files", str(scan))
    page.click("#send")
    problem = page.locator("#upload-problem")
    problem.wait_for(state="visible")
    shot(page, "12-month-13")
    text = problem.inner_text()
    assert "phần ngày tiếp nhận không phải ngày có thật" in text and "not a real calendar date" in text, text
    page.fill("#case", "000.00.14.H56-26113-0001")
    page.click("#send")
    assert "phần ngày tiếp nhận '26113' phải là 6 chữ số yymmdd" in problem.inner_text()
    page.fill("#case", "000.00.14.X56-261130-0001")
    page.click("#send")
    assert "phần mã cơ quan '000.00.14.X56'" in problem.inner_text()
    assert uploads == []  # nothing left the browser

    # The same sentence as the server's own (models/case_id.py), word for word.
    from models import CaseId, InvalidCaseId

    for bad in ("000.00.14.H56-261330-0001", "000.00.14.H56 261130 0001", "000.00.14.H56-261130-0000"):
        page.fill("#case", bad)
        page.click("#send")
        with pytest.raises(InvalidCaseId) as err:
            CaseId.parse(bad)
        assert problem.inner_text() == f"{err.value.message_vi} ({err.value.message_en})"

    # A 0-byte file: said to be empty, not "no file chosen"; nothing sent.
    page.set_input_files("#files", str(empty))
    assert "trang-rong.jpg rỗng (0 byte)" in problem.inner_text()
    page.fill("#case", "000.00.14.H56-261130-0001")
    page.click("#send")
    shot(page, "13-empty-file")
    assert "trang-rong.jpg rỗng (0 byte)" in problem.inner_text() and uploads == []

    # A pasted ID with spaces and a lowercase letter is normalised as the server does, then sent
    # (no browser "Please match the requested format").
    page.set_input_files("#files", str(scan))
    page.fill("#case", "  000.00.14.h56-261130-0001 ")
    page.click("#send")
    page.wait_for_function("() => document.querySelector('#job') && !document.querySelector('#job').hidden")
    assert page.input_value("#case") == "000.00.14.H56-261130-0001"
    assert uploads and uploads[-1].endswith("/api/v1/cases/000.00.14.H56-261130-0001/scans"), uploads
    assert problem.is_hidden()

    # The server's 404 for an ID it does not take is a sentence, not "Không gửi được, hãy thử lại".
    page.evaluate("() => { window.sohoaCaseId.check = (t) => ({ok: true, value: t}); }")
    page.fill("#case", "000.00.14.H56-261330-0001")
    page.set_input_files("#files", str(scan))
    page.click("#send")
    page.wait_for_function("() => !document.querySelector('#upload-problem').hidden")
    text = problem.inner_text()
    assert "Không có hồ sơ 000.00.14.H56-261330-0001" in text and "kiểm tra lại mã hồ sơ" in text, text
    assert "thử lại" not in text

    # A wrong cover-sheet ID: the sentence in the page, no window with "Mã lỗi 422".
    page.reload()
    page.fill("#sheet-cases", "000.00.14.H56-261130-0001\n000.00.14.H56-261331-0002")
    with _no_new_page(context):
        page.click("#sheets-form button[type=submit]")
        sheets = page.locator("#sheets-problem")
        sheets.wait_for(state="visible")
    shot(page, "12-cover-sheet-id")
    assert "'000.00.14.H56-261331-0002' không phải mã hồ sơ hợp lệ" in sheets.inner_text()
    assert "không phải ngày có thật" in sheets.inner_text()
    context.close()


class _no_new_page:
    """Fails the block if the browser opened another tab or window."""

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        self.context = context

    def __enter__(self):  # type: ignore[no-untyped-def]
        self.before = len(self.context.pages)
        return self

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        assert len(self.context.pages) == self.before, "a window was opened"


def test_the_server_says_what_is_wrong_with_a_cover_sheet_id_and_an_empty_file(counter):
    with signed_in(counter.url, "hoa") as hoa:
        r = hoa.get("/desk/coversheets.pdf", params={"case": "000.00.14.H56-261331-0002"})
        assert r.status_code == 422
        assert "phần ngày tiếp nhận không phải ngày có thật" in r.text and "Mã lỗi 422" not in r.text
    secret = token(counter.env, "scanner-empty", "read", "write")
    api = httpx.Client(base_url=counter.url, timeout=60, headers={"Authorization": f"Bearer {secret}"})
    r = api.post(f"/api/v1/cases/{TYPED_CASE}/scans", files={"files": ("trang-rong.jpg", b"", "image/jpeg")})
    assert r.status_code == 422, r.text
    assert r.json()["message_vi"].startswith("Tệp trang-rong.jpg rỗng (0 byte)"), r.json()
    # An empty file input beside nothing else is still "no file chosen".
    r = api.post(f"/api/v1/cases/{TYPED_CASE}/scans", files={"files": ("", b"", "application/octet-stream")})
    assert r.status_code == 409 and r.json()["message_vi"] == "Chưa chọn tệp bản quét nào.", r.text


# ------------------------------------------------------------------------------------------ 18
def test_an_open_desk_tab_times_out_and_the_sign_in_page_says_the_session_ended(browser, web_data, tmp_path):
    # Six idle minutes... of a tenth of a minute: the desk's polling every 5 s must not keep it alive.
    server = WebServer(env=dict(own_copy(web_data, tmp_path / "sohoa-data"), SOHOA_WEB_IDLE_MINUTES="0.1"))
    server.start()
    try:
        context, page = sign_in(browser, server, "hoa", "/desk")
        page.wait_for_url("**/sign-in?**", timeout=60_000)
        page.wait_for_load_state()
        shot(page, "18-session-ended")
        notice = page.inner_text("main")
        assert "Phiên làm việc đã hết hạn" in notice, notice
        assert "next=%2Fdesk" in page.url
        context.close()
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------ 20
def test_a_handler_sees_only_the_notice_and_an_admin_is_sent_where_an_admin_may_go(browser, counter):
    context, page = sign_in(browser, counter, "lan", "/desk")
    shot(page, "20-handler-desk")
    assert "Chỉ cán bộ tiếp nhận" in page.inner_text("main")
    assert page.locator("#upload-form").count() == 0 and page.locator("#sheets-form").count() == 0
    context.close()
    with signed_in(counter.url, "quan") as quan:
        r = quan.get("/desk")
        assert r.status_code == 403
        link = re.search(r'<p><a href="([^"]+)">', r.text).group(1)
        assert link == "/admin/audit" and quan.get(link).status_code == 200
    with signed_in(counter.url, "lan") as lan:
        r = lan.get("/admin/audit")
        assert r.status_code == 403 and lan.get(re.search(r'<p><a href="([^"]+)">', r.text).group(1)).status_code == 200


# ------------------------------------------------------------------------------------------ 16, 17
def test_a_cover_sheet_stack_needs_no_typed_case_id_and_the_status_follows_the_job(browser, desk, tmp_path):
    stack = write_stack(tmp_path / "xap-to-bia.pdf", [sheet(STACK_CASE), text_page("PAPA")])
    context, page = sign_in(browser, desk, "mai.desk", "/desk")
    # Every state the job card goes through, with the progress line beside it at that moment.
    page.evaluate("""() => {
      window.seen = [];
      new MutationObserver(() => window.seen.push([document.querySelector('#job-status').className,
        document.querySelector('#upload-status').textContent])).observe(document.querySelector('#job'),
        {subtree: true, childList: true, characterData: true, attributes: true});
    }""")
    page.set_input_files("#files", str(stack))
    page.check("#review")
    page.click("#send")  # no case ID typed
    page.wait_for_selector("#hold:not([hidden])", timeout=WAIT * 1000)
    shot(page, "17-stack-split")
    assert STACK_CASE in page.inner_text("#segments") and "trang 2 (1 trang)" in page.inner_text("#segments")
    page.click("#store-anyway")
    page.wait_for_selector("#job-status.stored", timeout=WAIT * 1000)
    # The followed job's row in "Hôm nay" says what its card says, at once.
    job_id = page.inner_text("#job-id")
    row = page.locator(f"#today tr[data-job='{job_id}'] td").nth(3)
    assert row.inner_text() == "Đã lưu", row.inner_text()
    shot(page, "16-stored")
    assert STACK_CASE in page.inner_text("#documents")
    # The desk's thumbnails are part of the job read, not one audit row each.
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog

    catalog = open_catalog(Settings.from_env({"SOHOA_DATA_DIR": desk.env["SOHOA_DATA_DIR"]}))
    rows = [e for e in AuditTrail(catalog.engine).entries(limit=2000) if job_id in (e.detail or "")]
    assert rows and not [e for e in rows if "thumbnail" in (e.detail or "")], [e.detail for e in rows]
    assert page.locator("#upload-progress").is_hidden() and page.inner_text("#upload-status") == ""
    assert page.locator(f"#today tr[data-job='{job_id}'] td").nth(1).inner_text() == STACK_CASE
    seen = page.evaluate("() => window.seen")
    stale = [s for s in seen if not any(k in s[0] for k in ("received", "checking")) and "đang kiểm tra" in s[1]]
    assert not stale, stale

    # A new upload that is refused: the old job's card goes, the refusal is what is shown.
    page.fill("#case", "000.00.14.H56-261399-0001")
    page.set_input_files("#files", str(stack))
    page.click("#send")
    page.locator("#upload-problem").wait_for(state="visible")
    shot(page, "16-refused-after-stored")
    assert page.locator("#job").is_hidden()
    context.close()


# ------------------------------------------------------------------------------------------ 14, 15
def test_two_quick_replacements_on_a_held_job_are_both_checked_and_the_job_waits_for_the_operator(desk):
    env = desk.env
    api = httpx.Client(base_url=desk.url, timeout=120,
                       headers={"Authorization": f"Bearer {token(env, 'scanner-replace', 'read', 'write')}"})
    files = [("files", (f"trang-{i}.jpg", jpeg(m, blur=b), "image/jpeg"))
             for i, (m, b) in enumerate((("ALPHA", 0), ("BRAVO", 4.0), ("CHARLIE", 0)), 1)]
    r = api.post(f"/api/v1/cases/{TYPED_CASE}/scans", files=files, params={"on_rescan": "hold"})
    assert r.status_code == 202, r.text
    url = r.headers["location"]
    held = follow(api, url)
    assert held["status"] == "checked" and held["hold"]["code"] == "rescan", held

    sharp, blurred = jpeg("BRAVO"), jpeg("BRAVO", blur=4.0)
    assert api.post(f"{url}/pages/2", files={"file": ("p2-a.jpg", sharp, "image/jpeg")}).status_code == 202
    deadline = time.monotonic() + WAIT  # the second replacement arrives while the first is being checked
    while api.get(url).json()["status"] not in ("checking", "checked", "stored", "failed") \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert api.post(f"{url}/pages/2", files={"file": ("p2-b.jpg", blurred, "image/jpeg")}).status_code == 202
    job = follow(api, url)
    # The blurred second replacement was checked and shown: the job waits, nothing is stored.
    assert job["status"] == "checked", job
    page2 = job["pages"][1]
    assert (page2["version"], page2["status"], page2["needs_rescan"]) == (3, "checked", True), page2
    assert job["hold"]["code"] == "rescan" and not [d for d in job["documents"] if d.get("document_id")]

    # A good page instead: it passes, and still the operator sees it before "Lưu" stores the job.
    assert api.post(f"{url}/pages/2", files={"file": ("p2-c.jpg", sharp, "image/jpeg")}).status_code == 202
    job = follow(api, url)
    assert job["status"] == "checked" and job["hold"]["code"] == "replaced", job
    assert "Đã thay trang 2" in job["hold"]["message_vi"] and not job["pages"][1]["needs_rescan"]
    assert api.post(f"{url}/store").status_code == 202
    job = follow(api, url)
    assert job["status"] == "stored", job
    assert [p["version"] for p in job["pages"]] == [1, 4, 1]


def test_replacements_of_one_page_at_the_same_time_are_applied_one_after_the_other(data_dir, tmp_path):
    from flows.service import open_job_store
    from models.jobs import JobPage
    from storage.job_pages import replace_page

    store = open_job_store()
    scan = tmp_path / "1.jpg"
    scan.write_bytes(jpeg("ALPHA"))
    job = store.create([scan], case_id=TYPED_CASE, operator="an")
    store.set_page(job.id, JobPage(number=1, file=job.files[0].path, file_page=1, version=1, status="checked"))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def replace(i: int) -> None:
        try:
            with store.upload() as up:
                up.add_stream(f"r{i}.jpg", [jpeg(f"R{i}")])
                barrier.wait()
                replace_page(store, job.id, 1, up)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=replace, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    done = store.require(job.id)
    assert done.pages[0].version == 5 and done.pages[0].status == "pending"
    replaced = [f for f in done.files if f.path.startswith("replacements/")]
    assert len({f.path for f in replaced}) == 4
    # The page points at a file whose recorded checksum is its own.
    from pipeline.reader import sha256_of

    current = next(f for f in replaced if f.path == done.pages[0].file)
    assert sha256_of(store.path_of(job.id, current.path)) == current.sha256


# ------------------------------------------------------------------------------------------ 19
def test_the_audit_page_the_api_and_the_case_page_speak_vietnamese_and_local_time(counter):
    with signed_in(counter.url, "minh") as minh:  # a handler of unit 22 asking for a unit-14 case
        assert minh.get(f"/cases/{CASE_A}").status_code == 404
    with signed_in(counter.url, "lan") as lan:
        case_page = lan.get(f"/cases/{CASE_A}").text
        doc = lan.get(f"/api/v1/cases/{CASE_A}").json()["documents"][0]
    # A document is named by its kind and place in the case; the file name is only beside it.
    assert re.search(r'documents/[0-9a-f]+">Đơn đề nghị 1</a>', case_page), case_page
    assert doc["created_at"].endswith("+07:00"), doc["created_at"]
    with signed_in(counter.url, "quan") as quan:
        page = quan.get("/admin/audit", params={"case": CASE_A}).text
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    assert "Xem hồ sơ" in cells and "Bị từ chối (báo không có)" in cells, cells[:40]
    assert any(c.startswith(f"hồ sơ của đơn vị khác — GET /cases/{CASE_A}") for c in cells), cells
    assert not {"view_case", "not_found", "allowed"} & set(cells)
    assert not [c for c in cells if c.startswith("case of another unit")]


def test_cli_reports_say_vietnamese_first_and_show_vietnam_time_without_a_dsa_warning(counter, capsys):
    from cli.documents import _print_document

    _print_document({"source_name": "don.jpg", "status": "stored", "document_id": "abc123", "page_count": 1,
                     "mean_confidence": 91.0, "stored_keys": {"source": "cases/x/originals/abc123.jpg"}})
    out = capsys.readouterr().out
    assert "đã lưu (stored), mã tài liệu abc123" in out and "bản quét gốc (source): cases/x" in out, out
    assert "(document " not in out

    from tests.web_fixtures import run_cli

    res = run_cli(counter.env, "show", CASE_A)
    assert res.returncode == 0, res.stderr
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", res.stdout), res.stdout
    assert "+00:00" not in res.stdout and "ký số cơ quan (agency)" in res.stdout, res.stdout
    res = run_cli(counter.env, "verify", "--signatures", CASE_A)
    assert "CryptographyDeprecationWarning" not in res.stderr + res.stdout, res.stderr
    assert "DSA" not in res.stderr


def test_a_tab_closed_mid_upload_leaves_one_log_line_not_a_traceback(counter):
    import socket

    with signed_in(counter.url, "hoa") as hoa:
        cookie = "; ".join(f"{k}={v}" for k, v in hoa.cookies.items())
        csrf = re.search(r'data-csrf="([^"]+)"', hoa.get("/desk").text).group(1)
    log_before = counter.log.read_text(errors="replace")
    boundary = "cut-off"
    head = (f"POST /api/v1/cases/{TYPED_CASE}/scans HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
            f"X-CSRF-Token: {csrf}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {4 * 1024 * 1024}\r\n\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f"name=\"files\"; filename=\"xap.pdf\"\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", counter.port)) as s:
        s.sendall(head + b"%PDF-1.7\n" + b"x" * 256 * 1024)
        time.sleep(0.5)  # the server is reading the body when the tab goes
    deadline = time.monotonic() + 30
    while "upload cut off" not in counter.log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.1)
    new = counter.log.read_text(errors="replace")[len(log_before):]
    assert "upload cut off: the client closed the connection" in new, new
    assert "Traceback" not in new and len([l for l in new.splitlines() if l.strip()]) <= 2, new
    # Nothing half-received is kept.
    incoming = counter.log.parent / "jobs" / ".incoming"
    assert not incoming.is_dir() or not [p for p in incoming.rglob("*") if p.is_file()]
    assert "CryptographyDeprecationWarning" not in counter.log.read_text(errors="replace")
