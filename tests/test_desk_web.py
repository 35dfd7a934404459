"""The scanning desk over HTTP and in a real browser, against ``sohoa serve`` with its intake service.

The server is a subprocess on the seeded web data (tests/web_fixtures.py) with the desk's intake
service running inside it and pointed at the session's Prefect test server. The API test uploads
with bearer tokens; the browser test (Playwright driving Debian's chromium) is an operator at the
counter: three pages, one blurred, the blurred verdict, the page replaced, the dossier stored and
opened. Screenshots go to tests/artifacts/ (git-ignored) to be looked at.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.test_desk import text_page
from tests.web_fixtures import ARTIFACTS, PASSWORD, WebServer, run_cli

UNIT = "000.00.14.H56"
NEW_CASE = "000.00.14.H56-261129-0007"
API_CASE = "000.00.14.H56-261129-0008"
OTHER_UNIT_CASE = "000.00.22.H56-261129-0001"
WAIT = 240.0


def jpeg(marker: str, *, blur: float = 0.0) -> bytes:
    pixels = np.array(text_page(marker, dpi=200))
    if blur:
        pixels = cv2.GaussianBlur(pixels, (0, 0), blur)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=85, dpi=(200, 200))
    return buf.getvalue()


def own_copy(web_data: dict[str, str], dest: Path) -> dict[str, str]:
    """A private copy of the seeded data folder: the desk's uploads add cases that the handlers' tests,
    sharing the session's seeded folder, must not see. The SQLite catalog is copied with SQLite's
    backup API (another test's server may have it open)."""
    import sqlite3

    src = Path(web_data["SOHOA_DATA_DIR"])
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("catalog.sqlite3*"))
    with sqlite3.connect(src / "catalog.sqlite3") as a, sqlite3.connect(dest / "catalog.sqlite3") as b:
        a.backup(b)
    return dict(web_data, SOHOA_DATA_DIR=str(dest))


def start_desk_server(web_data: dict[str, str], dest: Path, **extra: str) -> WebServer:
    """``sohoa serve`` with the intake service on, an operator account and the harness's Prefect API,
    on its own copy of the seeded data (``extra``: more environment)."""
    from prefect.settings import PREFECT_API_URL

    env = dict(own_copy(web_data, dest), SOHOA_INTAKE_SERVICE="1", PREFECT_API_URL=PREFECT_API_URL.value(),
               PREFECT_LOGGING_LEVEL="WARNING", **extra)
    res = run_cli(env, "user", "add", "mai.desk", "--role", "operator", "--unit", UNIT, "--password-stdin",
                  stdin=f"{PASSWORD}\n")
    assert res.returncode == 0, res.stderr
    server = WebServer(env=env)
    server.start()
    return server


@pytest.fixture(scope="module")
def desk_server(prefect_harness, web_data, tmp_path_factory):
    server = start_desk_server(web_data, tmp_path_factory.mktemp("desk") / "sohoa-data")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def small_limit_server(prefect_harness, web_data, tmp_path_factory):
    """The same with an upload limit of 1 MB (``SOHOA_UPLOAD_LIMIT_MB``; the default is 500)."""
    server = start_desk_server(web_data, tmp_path_factory.mktemp("desk-limit") / "sohoa-data",
                               SOHOA_UPLOAD_LIMIT_MB="1")
    yield server
    server.stop()


def token(env: dict[str, str], name: str, *scopes: str, unit: str = UNIT) -> str:
    """A new API token's secret (``sohoa token add`` prints only the secret on stdout)."""
    args = [a for s in scopes for a in ("--scope", s)]
    res = run_cli(env, "token", "add", name, "--unit", unit, *args)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def follow(client: httpx.Client, url: str) -> dict:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        job = client.get(url).json()
        if job["status"] in ("stored", "failed") or (job["status"] == "checked" and job["hold"]):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {url} did not finish: {job}")


def test_api_upload_with_a_write_token_is_streamed_checked_stored_and_audited(desk_server):
    env = desk_server.env
    scanner = httpx.Client(base_url=desk_server.url, timeout=60,
                           headers={"Authorization": f"Bearer {token(env, 'scanner-desk', 'read', 'write')}"})
    reader = httpx.Client(base_url=desk_server.url, timeout=60,
                          headers={"Authorization": f"Bearer {token(env, 'egov-desk', 'read')}"})
    body = jpeg("KILO")
    files = {"files": ("don-de-nghi.jpg", body, "image/jpeg")}
    # A read-only token cannot upload; nor can a write token to another unit's case.
    assert reader.post(f"/api/v1/cases/{API_CASE}/scans", files=files).status_code == 403
    assert scanner.post(f"/api/v1/cases/{OTHER_UNIT_CASE}/scans", files=files).status_code == 403

    r = scanner.post(f"/api/v1/cases/{API_CASE}/scans", files=files, params={"kind": "Đơn đề nghị"})
    assert r.status_code == 202, r.text
    url = r.headers["location"]
    assert url == r.json()["links"]["self"] and url.startswith("/api/v1/jobs/")
    job = follow(scanner, url)
    assert job["status"] == "stored", job
    assert job["files"][0]["size"] == len(body)
    assert [p["sentence_vi"] for p in job["pages"]] == ["trang 1: đạt"]
    [doc] = job["documents"]
    assert doc["case_id"] == API_CASE and doc["pages_done"] == 1
    pdf = scanner.get(doc["links"]["searchable_pdf"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf.content, capture_output=True, check=True).stdout
    assert b"KILO" in text
    # The job of another unit's reader: as if it did not exist.
    assert reader.get(url).status_code == 200
    other = httpx.Client(base_url=desk_server.url, timeout=60, headers={
        "Authorization": f"Bearer {token(env, 'egov-22', 'read', unit='000.00.22.H56')}"})
    assert other.get(url).status_code == 404
    # The upload is in the audit trail, with the file's checksum.
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog

    catalog = open_catalog(Settings.from_env({"SOHOA_DATA_DIR": env["SOHOA_DATA_DIR"]}))
    uploads = [e for e in AuditTrail(catalog.engine).entries(case_id=API_CASE) if e.action == "upload"]
    assert ("token:egov-desk", "forbidden") in [(e.actor, e.outcome) for e in uploads]
    received = [e for e in uploads if e.outcome == "allowed" and job["id"] in (e.detail or "")]
    assert [e.actor for e in received] == ["token:scanner-desk"]
    assert job["files"][0]["sha256"][:16] in received[0].detail


def leftovers(env: dict[str, str]) -> tuple[set[str], list[Path]]:
    """The job folders of a server's data and whatever files sit in its unfinished uploads."""
    root = Path(env["SOHOA_DATA_DIR"]) / "jobs"
    jobs = {d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")} if root.is_dir() else set()
    incoming = root / ".incoming"
    return jobs, sorted(p for p in incoming.rglob("*") if p.is_file()) if incoming.is_dir() else []


def test_an_upload_over_the_limit_gets_413_with_one_sentence_leaves_nothing_and_the_next_upload_is_stored(
        small_limit_server):
    env = small_limit_server.env
    secret = token(env, "scanner-limit", "read", "write")
    scanner = httpx.Client(base_url=small_limit_server.url, timeout=60, headers={"Authorization": f"Bearer {secret}"})
    url = f"/api/v1/cases/{API_CASE}/scans"
    jobs_before, _ = leftovers(env)
    big = np.random.default_rng(12).integers(0, 256, 3 * 1024 * 1024, dtype=np.uint8).tobytes()  # 3 MB > 1 MB

    # Declared too large (Content-Length), and streamed without a length (chunked): in the second
    # the limit is only found while writing, after the first megabyte is on disk.
    boundary = "sohoa-limit-test"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"ho-so-lon.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunked():  # a generator body: httpx sends it with Transfer-Encoding: chunked
        yield head
        for i in range(0, len(big), 64 * 1024):
            yield big[i:i + 64 * 1024]
        yield tail

    refusals = [scanner.post(url, files={"files": ("ho-so-lon.jpg", big, "image/jpeg")}),
                scanner.post(url, content=chunked(),
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})]
    for r in refusals:
        assert r.status_code == 413, r.text
        body = r.json()
        for sentence in (body["message_vi"], body["message_en"]):  # one plain sentence, saying the limit
            assert "1 MB" in sentence and sentence.endswith(".") and sentence.count(". ") == 0, sentence
            assert "Traceback" not in sentence and "Error" not in sentence
        assert body["detail"] == body["message_en"]
    assert refusals[0].json()["message_en"].startswith("The upload is larger")  # refused on its declared length
    assert refusals[1].json()["message_vi"].startswith("Tệp ho-so-lon.jpg lớn hơn")  # found while streaming
    # Nothing half-written is kept: no new job, no file of an unfinished upload.
    jobs_after, partial = leftovers(env)
    assert jobs_after == jobs_before and partial == []
    # The refusals are in the audit trail.
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog

    catalog = open_catalog(Settings.from_env({"SOHOA_DATA_DIR": env["SOHOA_DATA_DIR"]}))
    refused = [e for e in AuditTrail(catalog.engine).entries(case_id=API_CASE)
               if e.action == "upload" and e.outcome == "refused"]
    assert len(refused) == 2 and all("upload limit" in (e.detail or "") for e in refused)

    # The service keeps working: a normal upload right after is received and stored.
    body = jpeg("MIKE")
    assert len(body) < 1024 * 1024
    r = scanner.post(url, files={"files": ("don.jpg", body, "image/jpeg")})
    assert r.status_code == 202, r.text
    job = follow(scanner, r.headers["location"])
    assert job["status"] == "stored", job
    assert leftovers(env)[1] == []


def test_the_desk_page_shows_the_limit_sentence_for_an_upload_over_the_limit(browser, small_limit_server, tmp_path):
    big = tmp_path / "ho-so-qua-lon.jpg"
    big.write_bytes(np.random.default_rng(13).integers(0, 256, 2 * 1024 * 1024, dtype=np.uint8).tobytes())
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{small_limit_server.url}/desk")
    page.fill("input[name=name]", "mai.desk")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/desk")
    assert "tối đa 1 MB" in page.inner_text("#upload-form")
    page.fill("#case", NEW_CASE)
    page.set_input_files("#files", str(big))
    page.click("#send")
    # The refusal has its own line (issue 21): the progress line stays for progress.
    page.wait_for_function("() => document.querySelector('#upload-problem').textContent.includes('MB')",
                           timeout=WAIT * 1000)
    status = page.inner_text("#upload-problem")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "desk-05-over-the-limit.png", full_page=True)
    assert "lớn hơn giới hạn tải lên 1 MB" in status and "larger than the upload limit of 1 MB" in status, status
    assert page.locator("figure.page").count() == 0 and page.locator("#upload-progress").is_hidden()
    context.close()


def test_sohoa_scan_hands_its_file_to_the_web_app_with_a_token_from_the_environment(desk_server, tmp_path):
    env = desk_server.env
    scan = tmp_path / "giay-to.jpg"
    scan.write_bytes(jpeg("LIMA"))
    secret = token(env, "desk-cli", "read", "write")
    res = run_cli(dict(env, SOHOA_URL=desk_server.url, SOHOA_TOKEN=secret, SOHOA_DATA_DIR=str(tmp_path / "elsewhere")),
                  "scan", str(scan), "--case", "000.00.14.H56-261129-0009")
    assert res.returncode == 0, res.stderr
    assert "trang 1: đạt" in res.stderr and "stored" in res.stdout
    assert secret not in res.stdout + res.stderr


def test_operator_uploads_sees_the_blurred_page_replaces_it_and_opens_the_stored_dossier(browser, desk_server,
                                                                                        tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    pages = []
    for name, marker, blur in (("trang-1.jpg", "ALPHA", 0), ("trang-2.jpg", "BRAVO", 4.0), ("trang-3.jpg", "CHARLIE", 0)):
        (tmp_path / name).write_bytes(jpeg(marker, blur=blur))
        pages.append(str(tmp_path / name))
    (tmp_path / "trang-2-quet-lai.jpg").write_bytes(jpeg("BRAVO"))

    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{desk_server.url}/desk")
    page.fill("input[name=name]", "mai.desk")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/desk")
    page.fill("#case", NEW_CASE)
    page.fill("#kind", "Hồ sơ cấp phép")
    page.set_input_files("#files", pages)
    page.screenshot(path=ARTIFACTS / "desk-01-chosen.png", full_page=True)
    page.click("#send")

    page.wait_for_selector("figure.page.rescan", timeout=WAIT * 1000)
    page.wait_for_selector("#hold:not([hidden])", timeout=WAIT * 1000)
    blurred = page.locator("figure.page.rescan")
    assert blurred.count() == 1 and blurred.get_attribute("data-page") == "2"
    assert "mờ" in blurred.inner_text() and "quét lại" in blurred.inner_text()
    assert page.locator("figure.page.ok").count() == 2
    page.wait_for_function("() => [...document.querySelectorAll('figure.page img')].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=ARTIFACTS / "desk-02-blurred-verdict.png", full_page=True)

    page.set_input_files("input[data-replace='2']", str(tmp_path / "trang-2-quet-lai.jpg"))
    # The new page's verdict is shown and the job waits for "Lưu" (issue 21, item 15).
    page.wait_for_function("() => document.querySelector('#hold-message').textContent.includes('Đã thay trang 2')",
                           timeout=WAIT * 1000)
    page.wait_for_selector("#hold:not([hidden])")
    assert page.locator("figure.page.rescan").count() == 0 and page.locator("figure.page.ok").count() == 3
    page.wait_for_function("() => [...document.querySelectorAll('figure.page img')].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=ARTIFACTS / "desk-02b-replaced-shown.png", full_page=True)
    page.click("#store-anyway")
    page.wait_for_selector("#job-status.stored", timeout=WAIT * 1000)
    assert page.locator("figure.page.rescan").count() == 0
    assert "Đã lưu" in page.inner_text("#job-status")
    page.wait_for_selector("#today td.stored")
    page.screenshot(path=ARTIFACTS / "desk-03-stored.png", full_page=True)

    page.click("#documents a:has-text('Mở hồ sơ điện tử')")
    page.wait_for_url(f"**/cases/{NEW_CASE}/documents/**")
    page.wait_for_selector("iframe.pdf")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)",
                           timeout=WAIT * 1000)  # thumbnails are rendered on first view, beside the OCR
    assert page.locator(".thumbs img").count() == 3
    page.screenshot(path=ARTIFACTS / "desk-04-opened.png", full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    context.close()
