"""The web app and API through a real ``sohoa serve`` subprocess: access, audit, downloads, security."""
from __future__ import annotations

import io
import re
import zipfile

import httpx
import pikepdf
import pytest

from tests.web_fixtures import CASE_A, CASE_B, PASSWORD, WebServer, run_cli, signed_in

SEARCHABLE = "/api/v1/cases/{case}/documents/{doc}/searchable.pdf"


@pytest.fixture(scope="module")
def lan(web_server):
    with signed_in(web_server.url, "lan") as client:
        yield client


def doc_of(client: httpx.Client, case: str) -> str:
    return client.get(f"/api/v1/cases/{case}").json()["documents"][0]["document_id"]


# ------------------------------------------------------------------------------------ functions
def test_search_finds_quyet_dinh_in_own_units_only(web_server, lan):
    page = lan.get("/search", params={"q": "quyet dinh"})
    assert page.status_code == 200
    assert f'href="/cases/{CASE_A}"' in page.text and CASE_B not in page.text
    assert "<mark>QUYẾT</mark> <mark>ĐỊNH</mark>" in page.text
    assert re.search(r"<strong>trang 2</strong>", page.text)  # the page of the stored PDF it is on
    with signed_in(web_server.url, "minh") as minh:
        data = minh.get("/api/v1/search", params={"q": "quyết định"}).json()
        assert [g["case_id"] for g in data["cases"]] == [CASE_B]
        assert minh.get("/api/v1/search", params={"q": "quyet dinh", "unit": "000.00.14.H56"}).status_code == 404


def test_case_list_and_case_page(lan):
    cases = lan.get("/api/v1/cases").json()["cases"]
    assert [c["case_id"] for c in cases] == [CASE_A]
    page = lan.get(f"/cases/{CASE_A}")
    assert page.status_code == 200
    assert "ho-so-mau.tif" in page.text and "hoa.tran" in page.text and "Đơn đề nghị" in page.text
    doc = lan.get(f"/api/v1/cases/{CASE_A}").json()["documents"][0]
    assert doc["page_count"] == 3 and doc["mean_confidence"] > 50


def test_document_page_thumbnails_and_inline_pdf(lan):
    doc = doc_of(lan, CASE_A)
    page = lan.get(f"/cases/{CASE_A}/documents/{doc}")
    assert page.status_code == 200 and page.text.count('class="thumb"') == 3 and "<iframe" in page.text
    png = lan.get(f"/cases/{CASE_A}/documents/{doc}/pages/2.png", params={"w": 120})
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(io.BytesIO(png.content)).width == 120
    pdf = lan.get(SEARCHABLE.format(case=CASE_A, doc=doc))
    assert pdf.headers["content-disposition"].startswith("inline;")
    assert "frame-ancestors 'self'" in pdf.headers["content-security-policy"]  # our own iframe only
    assert pdf.content.startswith(b"%PDF")


def test_document_page_shows_signer_time_and_validity(lan):
    doc = doc_of(lan, CASE_A)
    page = lan.get(f"/cases/{CASE_A}/documents/{doc}").text
    assert "Mã kết quả số hóa" in page and f"{CASE_A}-KQ{doc[:10].upper()}" in page
    assert "UBND TỈNH THỬ NGHIỆM (TEST) [TEST]" in page and "Hợp lệ" in page and "PAdES-B-T" in page
    assert "+07:00" in page and "Chưa ký số" not in page


def test_range_etag_and_stable_urls_with_a_read_token(web_server, web_data, lan):
    doc = doc_of(lan, CASE_A)
    res = run_cli(web_data, "token", "add", "egov-read", "--unit", "000.00.14.H56", "--scope", "read", "--expires", "90d")
    assert res.returncode == 0, res.stderr
    secret = res.stdout.strip()
    assert secret.startswith("sohoa_") and "shown once" in res.stderr
    api = httpx.Client(base_url=web_server.url, headers={"Authorization": f"Bearer {secret}"})
    url = SEARCHABLE.format(case=CASE_A, doc=doc)
    full = api.get(url)
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    etag = full.headers["etag"]
    part = api.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full.content)}"
    tail = api.get(url, headers={"Range": "bytes=-10"})
    assert tail.content == full.content[-10:]
    assert api.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert api.get(url, headers={"Range": f"bytes={len(full.content)}-"}).status_code == 416
    assert api.get(f"/api/v1/cases/{CASE_B}").status_code == 404
    # A read token cannot upload (the scope check answers before any upload code runs).
    assert api.post(f"/api/v1/cases/{CASE_A}/scans", files={"file": ("a.pdf", b"%PDF-1.7")}).status_code == 403
    revoked = run_cli(web_data, "token", "revoke", "egov-read")
    assert revoked.returncode == 0, revoked.stderr
    assert api.get(url).status_code == 401


def test_write_token_passes_the_scope_check(web_server, web_data):
    res = run_cli(web_data, "token", "add", "scanner-1", "--unit", "000.00.14.H56", "--scope", "write")
    api = httpx.Client(base_url=web_server.url, headers={"Authorization": f"Bearer {res.stdout.strip()}"})
    # Past the scope check: the desk's upload itself answers (415: no multipart body was sent).
    assert api.post(f"/api/v1/cases/{CASE_A}/scans").status_code == 415
    assert api.post(f"/api/v1/cases/{CASE_B}/scans").status_code == 403


def test_case_zip_and_merged_pdf(lan):
    z = lan.get(f"/api/v1/cases/{CASE_A}/files.zip")
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert len(names) == 1 and names[0].endswith(".pdf")
    assert zipfile.ZipFile(io.BytesIO(z.content)).read(names[0]).startswith(b"%PDF")
    merged = lan.get(f"/api/v1/cases/{CASE_A}/merged.pdf")
    with pikepdf.open(io.BytesIO(merged.content)) as pdf:
        assert len(pdf.pages) == 3
        with pdf.open_outline() as outline:
            assert [o.title for o in outline.root] == ["1. Đơn đề nghị — ho-so-mau.tif (3 trang)"]


def test_original_only_for_archivists(web_server, lan):
    doc = doc_of(lan, CASE_A)
    url = f"/api/v1/cases/{CASE_A}/documents/{doc}/original"
    assert lan.get(url).status_code == 403
    with signed_in(web_server.url, "thu") as thu:
        r = thu.get(url)
        assert r.status_code == 200 and r.content[:4] in (b"II*\x00", b"MM\x00*")


def test_case_zip_with_originals_only_for_archivists(web_server, web_data, lan):
    url = f"/api/v1/cases/{CASE_A}/files.zip"
    assert lan.get(url, params={"originals": 1}).status_code == 403  # a handler sees the case, not its scans
    assert "files.zip?originals=1" not in lan.get(f"/cases/{CASE_A}").text
    with signed_in(web_server.url, "thu") as thu:
        assert "files.zip?originals=1" in thu.get(f"/cases/{CASE_A}").text
        z = zipfile.ZipFile(io.BytesIO(thu.get(url, params={"originals": 1}).content))
        names = z.namelist()
        assert len(names) == 2 and names[0].endswith(".pdf")
        assert names[1].startswith("originals/") and names[1].endswith("ho-so-mau.tif")
        assert z.read(names[1])[:4] in (b"II*\x00", b"MM\x00*")
    entries = __import__("json").loads(run_cli(web_data, "audit", "--case", CASE_A, "--json").stdout)
    seen = {(e["actor"], e["action"], e["outcome"]) for e in entries}
    assert ("user:lan", "download_original", "forbidden") in seen
    assert ("user:thu", "download_original", "allowed") in seen


def test_presigned_link_lives_at_most_15_minutes(lan):
    doc = doc_of(lan, CASE_A)
    ok = lan.get(f"/api/v1/cases/{CASE_A}/documents/{doc}/link", params={"minutes": 15})
    assert ok.status_code == 200 and ok.json()["url"]
    assert lan.get(f"/api/v1/cases/{CASE_A}/documents/{doc}/link", params={"minutes": 16}).status_code == 422
    assert lan.get(f"/api/v1/cases/{CASE_B}/documents/{doc}/link").status_code == 404


# ------------------------------------------------------------------------------------ refusals
def test_another_units_case_is_not_found_like_a_missing_one(lan):
    doc = doc_of(lan, CASE_A)
    missing = lan.get("/cases/000.00.22.H56-181011-0099")
    other = lan.get(f"/cases/{CASE_B}")
    assert other.status_code == missing.status_code == 404
    assert other.text == missing.text
    assert lan.get(f"/api/v1/cases/{CASE_B}").json() == lan.get("/api/v1/cases/000.00.22.H56-181011-0099").json()
    assert lan.get(f"/api/v1/cases/{CASE_B}/files.zip").status_code == 404
    assert lan.get(SEARCHABLE.format(case=CASE_B, doc=doc)).status_code == 404
    # The document of case A asked for under case B's ID is not served either.
    assert lan.get(SEARCHABLE.format(case="000.00.14.H56-181011-0002", doc=doc)).status_code == 404


@pytest.mark.parametrize("path", [
    "/api/v1/cases/..%2F..%2Fetc%2Fpasswd", "/api/v1/cases/000.00.14.H56-181010-0001%2F..%2F..",
    "/api/v1/cases/000.00.14.H56-181010-0001/documents/..%2Fmanifest.json/searchable.pdf",
    "/api/v1/cases/000.00.14.H56-181010-0001/documents/%2E%2E/searchable.pdf",
    "/cases/000.00.14.H56-181010-0001/documents/ABC%00/pages/1.png",
])
def test_ids_in_urls_are_validated_before_storage(lan, path):
    r = lan.get(path)
    assert r.status_code == 404


def test_a_malformed_id_is_refused_by_the_guard_and_audited(web_data, lan):
    assert lan.get("/api/v1/cases/..%2F..%2Fetc%2Fpasswd/files.zip").status_code == 404
    entries = __import__("json").loads(run_cli(web_data, "audit", "--json", "--limit", "5").stdout)
    assert any(e["outcome"] == "not_found" and e["detail"].startswith("malformed id in URL") for e in entries)


def test_unauthenticated_goes_to_sign_in_or_401(web_server):
    anon = httpx.Client(base_url=web_server.url)
    r = anon.get(f"/cases/{CASE_A}")
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in?next=")
    assert anon.get("/api/v1/cases").status_code == 401
    assert anon.get("/api/v1/cases", headers={"Authorization": "Bearer sohoa_0000000000000000_" + "x" * 43}).status_code == 401
    assert anon.get(SEARCHABLE.format(case=CASE_A, doc="36f688361beae9b1171a")).status_code == 401


def test_admin_sees_the_audit_page_and_who_saw_the_dossier(web_server, web_data, lan):
    lan.get(f"/cases/{CASE_A}")
    with signed_in(web_server.url, "minh") as minh:
        minh.get(f"/cases/{CASE_A}")
    assert lan.get("/admin/audit").status_code == 403
    with signed_in(web_server.url, "quan") as quan:
        page = quan.get("/admin/audit", params={"case": CASE_A, "verify": "true"})
        assert page.status_code == 200 and "Chuỗi băm nguyên vẹn" in page.text
        assert quan.get(f"/cases/{CASE_A}").status_code == 404  # the admin reads no dossier
    res = run_cli(web_data, "audit", "--case", CASE_A, "--json")
    entries = __import__("json").loads(res.stdout)
    seen = {(e["actor"], e["action"], e["outcome"]) for e in entries}
    assert ("user:lan", "view_case", "allowed") in seen and ("user:minh", "view_case", "not_found") in seen
    assert all(e["client"] == "127.0.0.1" for e in entries)
    assert run_cli(web_data, "audit", "verify").returncode == 0


# ------------------------------------------------------------------------------------ security
def test_session_cookie_flags_and_no_secure_over_plain_http(web_server):
    anon = httpx.Client(base_url=web_server.url)
    csrf = re.search(r'name="csrf" value="([^"]+)"', anon.get("/sign-in").text).group(1)
    r = anon.post("/sign-in", data={"name": "lan", "password": PASSWORD, "csrf": csrf},
                  headers={"X-Forwarded-Proto": "https"})  # not a trusted proxy: ignored
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie


@pytest.fixture(scope="module")
def proxied_server(web_data):
    """A second replica on the same data, behind a 'trusted proxy' (loopback), with a 3-second idle limit."""
    server = WebServer(env={**web_data, "SOHOA_WEB_TRUSTED_PROXIES": "127.0.0.1", "SOHOA_WEB_IDLE_MINUTES": "0.05"})
    server.start()
    yield server
    server.stop()


def test_secure_cookie_behind_a_trusted_https_proxy(proxied_server):
    anon = httpx.Client(base_url=proxied_server.url)
    csrf = re.search(r'name="csrf" value="([^"]+)"', anon.get("/sign-in").text).group(1)
    r = anon.post("/sign-in", data={"name": "lan", "password": PASSWORD, "csrf": csrf},
                  headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 303
    assert "Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


def test_idle_session_expires(proxied_server):
    import time

    with signed_in(proxied_server.url, "lan") as client:
        assert client.get(f"/cases/{CASE_A}").status_code == 200
        time.sleep(3.5)
        r = client.get(f"/cases/{CASE_A}")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


def test_sessions_are_shared_by_replicas(web_server, proxied_server):
    with signed_in(web_server.url, "lan") as lan:
        cookie = lan.cookies.get("sohoa_session")
        other = httpx.Client(base_url=proxied_server.url, cookies={"sohoa_session": cookie})
        assert other.get(f"/api/v1/cases/{CASE_A}").status_code == 200  # signed in on one, known on the other
        assert lan.post("/sign-out", data={"csrf": re.search(r'name="csrf" value="([^"]+)"',
                                                              lan.get("/cases").text).group(1)}).status_code == 303
        assert other.get(f"/api/v1/cases/{CASE_A}").status_code == 401  # signed out on one, gone on both


def test_operator_reaches_the_desk_and_a_handler_is_not_offered_it(web_server, lan):
    assert 'href="/desk"' not in lan.get("/cases").text
    with signed_in(web_server.url, "hoa") as hoa:
        assert 'href="/desk"' in hoa.get("/cases").text
        desk = hoa.get("/desk")
        assert desk.status_code == 200 and "Quầy nhận hồ sơ" in desk.text
        assert re.search(r'data-csrf="[^"]{20,}"', desk.text)


def test_csrf_token_required_on_every_form(web_server, lan):
    forms = []
    doc = doc_of(lan, CASE_A)
    for path in ("/search?q=quyet+dinh", "/cases", f"/cases/{CASE_A}", f"/cases/{CASE_A}/documents/{doc}"):
        html = lan.get(path).text
        for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", html, flags=re.S):
            forms.append(form)
            assert re.search(r'<input type="hidden" name="csrf" value="[^"]{20,}">', form), form
    anon_html = httpx.get(web_server.url + "/sign-in").text
    assert 'name="csrf"' in anon_html
    assert forms
    # Without the token: refused, and the session still works (sign-out did not happen).
    assert lan.post("/sign-out", data={}).status_code == 403
    assert lan.get("/api/v1/cases").status_code == 200
    anon = httpx.Client(base_url=web_server.url)
    anon.get("/sign-in")
    assert anon.post("/sign-in", data={"name": "lan", "password": PASSWORD, "csrf": "forged"}).status_code == 403
    # A state-changing API call with only the session cookie needs the X-CSRF-Token header too.
    with signed_in(web_server.url, "lan") as c:
        assert c.post(f"/api/v1/cases/{CASE_A}/scans").status_code == 403


def test_signed_in_users_are_sent_on_from_the_sign_in_page(web_server, lan):
    """Regression: the sign-in page's ``next`` parameter shadowed next() and a signed-in user got a 500."""
    r = lan.get("/sign-in")
    assert r.status_code == 303 and r.headers["location"] == "/search"
    assert lan.get("/").headers["location"] == "/search"
    with signed_in(web_server.url, "quan") as quan:
        assert quan.get("/sign-in").headers["location"] == "/admin/audit"
        assert quan.get("/").headers["location"] == "/admin/audit"


def test_security_headers_and_no_inline_script(lan):
    doc = doc_of(lan, CASE_A)
    for path in ("/sign-in", "/search?q=x", f"/cases/{CASE_A}", f"/cases/{CASE_A}/documents/{doc}", "/api/docs"):
        r = lan.get(path)
        assert "content-security-policy" in r.headers, (path, r.status_code, dict(r.headers))
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), path
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", r.text), path  # no inline event handlers either
        assert "http://" not in r.text.replace("http://127.0.0.1", "") and "https://" not in r.text  # no CDN


def test_sign_in_throttling_is_logged(web_server, web_data):
    anon = httpx.Client(base_url=web_server.url, timeout=60)
    csrf = re.search(r'name="csrf" value="([^"]+)"', anon.get("/sign-in").text).group(1)
    codes = [anon.post("/sign-in", data={"name": "khoa", "password": f"sai-{i}", "csrf": csrf}).status_code
             for i in range(5)]
    assert codes == [401] * 5
    right = anon.post("/sign-in", data={"name": "khoa", "password": PASSWORD, "csrf": csrf})
    assert right.status_code == 429 and "sohoa_session" not in right.headers.get("set-cookie", "")
    assert int(right.headers["retry-after"]) > 0
    import json

    entries = json.loads(run_cli(web_data, "audit", "--json", "--limit", "50").stdout)
    mine = [e["outcome"] for e in reversed(entries) if e["actor"] == "user:khoa" and e["action"] == "sign_in"]
    assert mine == ["failed"] * 5 + ["throttled"]


def test_disabled_users_session_stops_at_once(web_server, web_data):
    with signed_in(web_server.url, "vy") as vy:
        assert vy.get(f"/api/v1/cases/{CASE_A}").status_code == 200
        assert run_cli(web_data, "user", "disable", "vy").returncode == 0
        assert vy.get(f"/api/v1/cases/{CASE_A}").status_code == 401
        assert vy.get(f"/cases/{CASE_A}").status_code == 303


def test_cli_user_commands(web_data):
    res = run_cli(web_data, "user", "add", "tam", "--role", "handler", "--unit", "000.00.14.H56", "--password-stdin",
                  stdin="mot-mat-khau-moi\n")
    assert res.returncode == 0, res.stderr
    listed = run_cli(web_data, "user", "list").stdout
    assert re.search(r"tam\s+handler\s+000\.00\.14\.H56", listed)
    bad = run_cli(web_data, "user", "add", "tam2", "--role", "handler", "--unit", "H56", "--password-stdin",
                  stdin="mot-mat-khau-moi\n")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "000.00.14.H56" in bad.stderr
