"""A case handler in a real browser (Playwright driving Debian's chromium) against ``sohoa serve``.

Screenshots of the main pages go to tests/artifacts/ (git-ignored) to be looked at.
"""
from __future__ import annotations

import zipfile

from tests.web_fixtures import ARTIFACTS, CASE_A, CASE_B, PASSWORD


def test_handler_signs_in_searches_opens_downloads_is_refused_and_signs_out(browser, web_server, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{web_server.url}/cases")
    assert "/sign-in" in page.url  # not signed in: the sign-in page, and back to where we wanted after
    page.screenshot(path=ARTIFACTS / "01-sign-in.png", full_page=True)
    page.fill("input[name=name]", "lan")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/cases")
    assert CASE_A in page.inner_text("main") and CASE_B not in page.inner_text("main")
    page.screenshot(path=ARTIFACTS / "02-cases.png", full_page=True)

    page.click("header nav a[href='/search']")
    page.wait_for_url("**/search")
    page.fill("input[name=q]", "quyet dinh")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/search?q=quyet+dinh*")
    marks = page.locator("mark").all_inner_texts()
    assert "QUYẾT" in marks and "ĐỊNH" in marks
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=ARTIFACTS / "03-search.png", full_page=True)

    page.click(f"h2 a[href='/cases/{CASE_A}']")
    page.wait_for_url(f"**/cases/{CASE_A}")
    assert "ho-so-mau.tif" in page.inner_text("table")
    page.screenshot(path=ARTIFACTS / "04-case.png", full_page=True)

    page.click("table a")
    page.wait_for_selector("iframe.pdf")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator(".thumbs img").count() == 3
    page.wait_for_timeout(2500)  # let Chromium's PDF viewer draw inside the iframe before the screenshot
    page.screenshot(path=ARTIFACTS / "05-document.png", full_page=True)

    page.click(".thumbs a >> nth=1")  # page 2 of the PDF, rendered by the server
    page.wait_for_url("**/pages/2")
    page.wait_for_function("() => document.querySelector('img.page').naturalWidth >= 1000")
    page.screenshot(path=ARTIFACTS / "06-page-2.png", full_page=False)
    assert "QUYẾT ĐỊNH" in page.locator("pre").text_content()

    page.goto(f"{web_server.url}/cases/{CASE_A}")
    with page.expect_download() as info:
        page.click(f"a[href='/api/v1/cases/{CASE_A}/files.zip']")
    zip_path = tmp_path / "case.zip"
    info.value.save_as(zip_path)
    assert info.value.suggested_filename == f"{CASE_A}.zip"
    with zipfile.ZipFile(zip_path) as z:
        assert [n for n in z.namelist() if n.endswith(".pdf")]

    response = page.goto(f"{web_server.url}/cases/{CASE_B}")
    assert response.status == 404 and "Không tìm thấy" in page.inner_text("main")
    page.screenshot(path=ARTIFACTS / "07-other-unit-404.png", full_page=True)

    page.click("form.signout button")
    page.wait_for_url("**/sign-in")
    page.goto(f"{web_server.url}/cases/{CASE_A}")
    assert "/sign-in" in page.url
    page.screenshot(path=ARTIFACTS / "08-signed-out.png", full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    context.close()


def test_admin_sees_who_saw_the_dossier_and_the_api_page_renders(browser, web_server):
    from tests.web_fixtures import signed_in

    with signed_in(web_server.url, "lan") as lan:
        assert lan.get(f"/cases/{CASE_A}").status_code == 200
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{web_server.url}/sign-in")
    page.fill("input[name=name]", "quan")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/admin/audit")  # an administrator reads no dossiers: the audit page, not search
    assert "Tìm kiếm" not in page.inner_text("header")
    page.goto(f"{web_server.url}/admin/audit?case={CASE_A}&verify=true")
    assert "Chuỗi băm nguyên vẹn" in page.inner_text("main")
    assert "user:lan" in page.inner_text("table.audit")
    page.screenshot(path=ARTIFACTS / "09-admin-audit.png", full_page=False)
    page.goto(f"{web_server.url}/api/docs")
    page.wait_for_selector("#api-endpoints .ep")  # rendered by /static/app.js from the OpenAPI JSON
    assert "/api/v1/cases/{case}/documents/{doc}/searchable.pdf" in page.inner_text("#api-endpoints")
    page.screenshot(path=ARTIFACTS / "10-api-docs.png", full_page=False)
    assert not errors, errors
    context.close()


def test_archivist_downloads_the_case_with_its_original_scans(browser, web_server, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 700}, accept_downloads=True, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{web_server.url}/sign-in")
    page.fill("input[name=name]", "thu")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_load_state()
    page.goto(f"{web_server.url}/cases/{CASE_A}")
    page.screenshot(path=ARTIFACTS / "11-case-archivist.png", full_page=False)
    with page.expect_download() as info:
        page.click(f"a[href='/api/v1/cases/{CASE_A}/files.zip?originals=1']")
    zip_path = tmp_path / "case-with-originals.zip"
    info.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
    assert any(n.endswith(".pdf") and "/" not in n for n in names)
    assert any(n.startswith("originals/") and n.endswith(".tif") for n in names), names
    assert not errors, errors
    context.close()
