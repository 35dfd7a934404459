"""Operators sign what they digitize at the desk and over the API, with their own key; an operator
without a key gets the agency signature alone, is told so on the document page, and signs later
from that page. Against ``sohoa serve`` with its intake service (tests/test_desk_web.py's server)."""
from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.pdfa_rules import pdfa2b_problems
from tests.test_desk_web import UNIT, follow, jpeg, start_desk_server
from tests.web_fixtures import ARTIFACTS, PASSWORD, browser, run_cli, signed_in  # noqa: F401 - browser fixture

CASE_MAI = "000.00.14.H56-261207-0001"
CASE_TOKEN = "000.00.14.H56-261207-0002"
CASE_TUAN = "000.00.14.H56-261207-0003"
CASE_BROWSER = "000.00.14.H56-261207-0004"


@pytest.fixture(scope="module")
def server(prefect_harness, web_data, tmp_path_factory):
    srv = start_desk_server(web_data, tmp_path_factory.mktemp("op-desk") / "sohoa-data")
    env = srv.env
    keys = Path(env["SOHOA_DATA_DIR"]) / "keys"
    # mai.desk (made by start_desk_server) gets a personal PKCS#12 key issued by the TEST CA.
    p12 = next(keys.glob("test-operator-*.p12"))
    res = run_cli(env, "keys", "operator", "add", "mai.desk", "--p12", str(p12), "--passphrase-file",
                  str(p12.with_suffix(".pass")), "--display-name", "Nguyễn Thị Mai")
    assert res.returncode == 0, res.stderr
    for name, role in (("tuan.desk", "operator"), ("ha.handler", "handler")):
        res = run_cli(env, "user", "add", name, "--role", role, "--unit", UNIT, "--password-stdin",
                      stdin=f"{PASSWORD}\n")
        assert res.returncode == 0, res.stderr
    yield srv
    srv.stop()


def _csrf(client: httpx.Client, path: str = "/desk") -> str:
    return re.search(r'(?:data-csrf|name="csrf" value)="([^"]+)"', client.get(path).text).group(1)


def _desk_upload(client: httpx.Client, case: str, marker: str) -> dict:
    r = client.post(f"/api/v1/cases/{case}/scans", files={"files": (f"{marker}.jpg", jpeg(marker), "image/jpeg")},
                    headers={"X-CSRF-Token": _csrf(client)})
    assert r.status_code == 202, r.text
    job = follow(client, r.headers["location"])
    assert job["status"] == "stored", job
    [doc] = job["documents"]
    return doc


def _nss_db(folder: Path, root: Path) -> str:
    folder.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{folder}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{folder}", "-n", "sohoa TEST CA", "-t", "CT,C,C", "-a", "-i",
                    str(root)], check=True, capture_output=True)
    return f"sql:{folder}"


def _render(pdf: Path, *extra: str) -> np.ndarray:
    png = subprocess.run(["pdftoppm", "-r", "144", "-f", "1", "-l", "1", "-gray", "-png", *extra, str(pdf)],
                         capture_output=True, check=True).stdout
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def _no_stamp_over_ink(pdf: Path) -> None:
    """Rendered without its annotations, page 1 is the scan alone: no ink of it under a signature's box."""
    import pikepdf

    scan, whole = _render(pdf, "-hide-annotations"), _render(pdf)
    with pikepdf.open(pdf) as doc:
        page = doc.pages[0]
        x0, top = float(page.MediaBox[0]), float(page.MediaBox[3])
        rects = [[float(v) for v in a.Rect] for a in page.obj.get("/Annots", []) if "/Rect" in a]
    assert len(rects) == 2
    for r in rects:
        c0, r0 = int((r[0] - x0) * 2), int((top - r[3]) * 2)  # 144 dpi: 2 px a point
        c1, r1 = int((r[2] - x0) * 2) + 1, int((top - r[1]) * 2) + 1
        assert (scan[r0:r1, c0:c1] < 160).sum() == 0
        assert (whole[r0:r1, c0:c1] < 160).sum() > 30  # the stamp's text is there


@pytest.mark.skipif(not __import__("shutil").which("certutil"), reason="certutil is not installed (libnss3-tools)")
def test_a_desk_upload_by_an_operator_with_a_key_carries_two_valid_signatures(server, tmp_path):
    with signed_in(server.url, "mai.desk") as mai:
        doc = _desk_upload(mai, CASE_MAI, "MIKE")
        pdf = tmp_path / "mai.pdf"
        pdf.write_bytes(mai.get(doc["links"]["searchable_pdf"]).content)
        page = mai.get(doc["links"]["page"]).text
    keys = Path(server.env["SOHOA_DATA_DIR"]) / "keys"
    out = subprocess.run(["pdfsig", "-nssdir", _nss_db(tmp_path / "nss", keys / "test-ca.pem"), str(pdf)],
                         capture_output=True, text=True, timeout=60).stdout
    assert out.count("Signature Validation: Signature is Valid.") == 2, out
    assert out.count("Certificate Validation: Certificate is Trusted.") == 2, out
    assert "SohoaOperator" in out and "SohoaAgency" in out
    assert b"/Version /2.0" not in pdf.read_bytes() and pdfa2b_problems(pdf) == []
    text = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "Người số hóa: Nguyễn Thị Mai" in text
    _no_stamp_over_ink(pdf)
    assert page.count("Hợp lệ") == 2 and "chưa có chữ ký số của người số hóa" not in page
    # The case handler's document page shows both signatures valid.
    with signed_in(server.url, "ha.handler") as handler:
        page = handler.get(doc["links"]["page"]).text
    assert page.count("Hợp lệ") == 2 and "chưa có chữ ký số của người số hóa" not in page


def test_a_token_acts_for_its_named_operator(server, tmp_path):
    env = server.env
    res = run_cli(env, "token", "add", "scanner-mai", "--unit", UNIT, "--scope", "write", "--operator", "mai.desk")
    assert res.returncode == 0, res.stderr
    bad = run_cli(env, "token", "add", "scanner-x", "--unit", UNIT, "--scope", "write", "--operator", "nobody")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    client = httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {res.stdout.strip()}"})
    r = client.post(f"/api/v1/cases/{CASE_TOKEN}/scans", files={"files": ("t.jpg", jpeg("TANGO"), "image/jpeg")})
    assert r.status_code == 202, r.text
    job = follow(client, r.headers["location"])
    assert job["status"] == "stored", job
    [doc] = job["documents"]
    info = client.get(doc["links"]["document"]).json()
    assert info["operator"] == "mai.desk"
    pdf = tmp_path / "token.pdf"
    pdf.write_bytes(client.get(doc["links"]["searchable_pdf"]).content)
    out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=60).stdout
    assert out.count("Signature Validation: Signature is Valid.") == 2, out


def test_an_operator_without_a_key_is_told_and_signs_later_from_the_document_page(server, tmp_path):
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog

    env = server.env
    with signed_in(server.url, "tuan.desk") as tuan:
        doc = _desk_upload(tuan, CASE_TUAN, "TUAN")
        page_url = doc["links"]["page"]
        page = tuan.get(page_url).text
        assert "chưa có chữ ký số của người số hóa" in page and "chưa có khóa ký cá nhân" in page
        assert "sign-operator" not in page  # no key yet: no button
        # The administrator gives tuan.desk a key; the page now offers the button.
        keys = Path(env["SOHOA_DATA_DIR"]) / "keys"
        p12 = next(keys.glob("test-operator-*.p12"))
        res = run_cli(env, "keys", "operator", "add", "tuan.desk", "--p12", str(p12), "--passphrase-file",
                      str(p12.with_suffix(".pass")), "--display-name", "Phạm Văn Tuấn")
        assert res.returncode == 0, res.stderr
        page = tuan.get(page_url).text
        action = f"{page_url}/sign-operator"
        assert f'action="{action}"' in page
        # Without the CSRF token: refused; another operator of the unit may not sign for tuan.
        assert tuan.post(action, data={}).status_code == 403
        with signed_in(server.url, "mai.desk") as mai:
            assert mai.post(action, data={"csrf": _csrf(mai, page_url)}).status_code == 403
        r = tuan.post(action, data={"csrf": _csrf(tuan, page_url)})
        assert r.status_code == 303, r.text
        page = tuan.get(page_url).text
        assert page.count("Hợp lệ") == 2 and "chưa có chữ ký số của người số hóa" not in page
        pdf = tmp_path / "tuan.pdf"
        pdf.write_bytes(tuan.get(doc["links"]["searchable_pdf"]).content)
    out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=60).stdout
    assert out.count("Signature Validation: Signature is Valid.") == 2, out
    assert pdfa2b_problems(pdf) == []
    _no_stamp_over_ink(pdf)
    catalog = open_catalog(Settings.from_env({"SOHOA_DATA_DIR": env["SOHOA_DATA_DIR"]}))
    trail = [(e.actor, e.outcome) for e in AuditTrail(catalog.engine).entries(case_id=CASE_TUAN)
             if e.action == "sign_as_operator"]
    assert ("user:tuan.desk", "forbidden") in trail and ("user:mai.desk", "forbidden") in trail
    assert trail.count(("user:tuan.desk", "allowed")) >= 1
    # The stored record lists both signatures (the manifest follows the new version of the PDF).
    res = run_cli(env, "verify", "--signatures", CASE_TUAN)
    assert res.returncode == 0, res.stdout + res.stderr


def test_in_the_browser_an_operator_uploads_and_the_handler_sees_both_signatures_valid(browser, server,  # noqa: F811
                                                                                       tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    scan = tmp_path / "trang-1.jpg"
    scan.write_bytes(jpeg("OSCAR"))
    desk = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="vi-VN")
    page = desk.new_page()
    page.goto(f"{server.url}/desk")
    page.fill("input[name=name]", "mai.desk")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/desk")
    page.fill("#case", CASE_BROWSER)
    page.set_input_files("#files", [str(scan)])
    page.click("#send")
    page.wait_for_selector("#job-status.stored", timeout=240_000)
    href = page.locator("#documents a:has-text('Mở hồ sơ điện tử')").get_attribute("href")
    desk.close()

    office = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="vi-VN")
    page = office.new_page()
    page.goto(f"{server.url}{href}")
    page.fill("input[name=name]", "ha.handler")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"**{href}")
    rows = page.locator("section.signatures tr.ok")
    assert rows.count() == 2
    assert "Người số hóa" in rows.nth(0).inner_text() and "Hợp lệ" in rows.nth(0).inner_text()
    assert "Cơ quan" in rows.nth(1).inner_text() and "Hợp lệ" in rows.nth(1).inner_text()
    assert "chưa có chữ ký số của người số hóa" not in page.content()
    page.screenshot(path=ARTIFACTS / "operator-signed-document.png", full_page=False)
    pdf_url = f"{server.url}/api/v1/cases/{CASE_BROWSER}/documents/{href.rsplit('/', 1)[1]}/searchable.pdf"
    pdf = tmp_path / "browser.pdf"
    pdf.write_bytes(office.request.get(pdf_url).body())
    office.close()
    _no_stamp_over_ink(pdf)
    assert pdfa2b_problems(pdf) == []
