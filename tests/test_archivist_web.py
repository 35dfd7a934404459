"""The archivist's pages on a running ``sohoa serve``: metadata editor, export with progress, two-person disposal."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.web_fixtures import ARTIFACTS, CASE_A, PASSWORD, WebServer, browser, run_cli, seed, signed_in  # noqa: F401

UNIT = CASE_A.split("-")[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_dossier):
    """Its own data folder (this module destroys a case), one one-page document in CASE_A, and an approver."""
    values = seed(tmp_path_factory.mktemp("arch") / "sohoa-data", sample_dossier,
                  documents=[(1, CASE_A, "Quyết định", "hoa.tran")])
    assert run_cli(values, "user", "add", "sep", "--role", "approver", "--unit", UNIT, "--password-stdin",
                   stdin=PASSWORD + "\n").returncode == 0
    srv = WebServer(env=values)
    srv.start()
    yield srv
    srv.stop()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_records_editor_export_and_two_person_disposal(server, browser):  # noqa: F811
    with signed_in(server.url, "thu") as thu, signed_in(server.url, "sep") as sep, \
            signed_in(server.url, "lan") as lan, signed_in(server.url, "minh") as minh:
        page = thu.get("/archivist", follow_redirects=True)
        assert page.status_code == 200 and "Không có hồ sơ nào hết thời hạn" in page.text
        form = thu.get(f"/archivist/records/{CASE_A}")
        assert form.status_code == 200 and "Tiêu đề hồ sơ" in form.text and "Mã hồ sơ gốc giấy" in form.text
        assert lan.get(f"/archivist/records/{CASE_A}").status_code == 403  # a handler edits no record
        assert minh.get(f"/archivist/records/{CASE_A}").status_code == 404  # another unit's: "does not exist"
        r = thu.post(f"/archivist/records/{CASE_A}", data={
            "csrf": _csrf(form.text), "title": "Hồ sơ cấp phép của Nguyễn Văn A", "retention": "5",
            "closed_on": "2010-06-30", "paper_code": "HS-18-0001"})
        assert r.status_code == 303
        bad = thu.post(f"/archivist/records/{CASE_A}", data={"csrf": _csrf(form.text), "retention": "mãi mãi"})
        assert bad.status_code == 400 and "Thời hạn lưu trữ" in bad.text
        shown = thu.get(f"/archivist/records/{CASE_A}").text
        assert "Hồ sơ cấp phép của Nguyễn Văn A" in shown and "user:thu" in shown

        r = thu.post(f"/archivist/export?unit={UNIT}", data={"csrf": _csrf(shown), "year": "2018"})
        assert r.status_code == 303
        job_url = r.headers["location"]
        deadline = time.monotonic() + 120
        while "xong" not in (job := thu.get(job_url)).text:
            assert "thất bại" not in job.text and time.monotonic() < deadline
            time.sleep(0.5)
        folder = re.search(r"<code>([^<]+/packages)</code>", job.text).group(1)
        assert run_cli(server.env, "archive", "verify", str(Path(folder) / CASE_A)).returncode == 0

        home = thu.get(f"/archivist?unit={UNIT}")
        assert CASE_A in home.text
        assert thu.post(f"/archivist/propose?unit={UNIT}", data={
            "csrf": _csrf(home.text), "case": CASE_A, "reason": "hết giá trị"}).status_code == 303
        listed = sep.get(f"/archivist?unit={UNIT}").text
        assert "Chờ duyệt" in listed and "Duyệt và hủy" in listed
        decision = {"decision_number": "7/QĐ-UBND", "decision_date": "2026-12-01"}
        assert thu.post(f"/archivist/proposals/1/approve?unit={UNIT}",
                        data={"csrf": _csrf(home.text), **decision}).status_code == 403  # not an approver
        ARTIFACTS.mkdir(exist_ok=True)
        editor = browser.new_page()
        editor.context.add_cookies([{"name": c.name, "value": c.value, "url": server.url} for c in thu.cookies.jar])
        editor.goto(f"{server.url}/archivist/records/{CASE_A}")
        assert editor.input_value("#f-paper_code") == "HS-18-0001"
        editor.screenshot(path=str(ARTIFACTS / "archivist-record.png"), full_page=True)
        editor.close()
        page = browser.new_page()
        page.context.add_cookies([{"name": c.name, "value": c.value, "url": server.url} for c in sep.cookies.jar])
        page.goto(f"{server.url}/archivist?unit={UNIT}")
        page.screenshot(path=str(ARTIFACTS / "archivist-approver.png"), full_page=True)
        page.fill("input[name=decision_number]", "7/QĐ-UBND")
        page.click("text=Duyệt và hủy")
        page.wait_for_url(re.compile(r".*message=.*"))
        assert "Đã hủy" in page.content()
        page.screenshot(path=str(ARTIFACTS / "archivist-done.png"), full_page=True)
        page.close()
        objects = Path(server.env["SOHOA_DATA_DIR"]) / "objects"
        assert not (objects / "cases" / CASE_A).exists()
        assert not any((objects / ".versions" / "cases").glob(f"{CASE_A}*"))
        assert run_cli(server.env, "audit", "verify").returncode == 0
        stone = run_cli(server.env, "retention", "tombstone", CASE_A)
        assert stone.returncode == 0 and '"approver": "user:sep"' in stone.stdout
