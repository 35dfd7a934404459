"""Issue 21, security items 3 and 5-10: what the probe of the web app and API found, each checked again.

The server is ``sohoa serve`` in a subprocess on its own data folder (accounts and tokens only, no
dossier), so that its throttles and audit rows are its own; item 8 reads the session's seeded server.
"""
from __future__ import annotations

import io
import json
import re
import secrets
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.web_fixtures import CASE_A, PASSWORD, WebServer, env, signed_in

UNIT_A, UNIT_B = "000.00.14.H56", "000.00.22.H56"
CASE_NEW = "000.00.14.H56-261207-0001"
REFUSAL_WINDOW_S = 3.0


def jpeg(text: str = "HO SO") -> bytes:
    im = Image.new("L", (800, 1100), 255)
    from PIL import ImageDraw

    ImageDraw.Draw(im).text((80, 200), text, fill=0, font_size=48)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80, dpi=(200, 200))
    return buf.getvalue()


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """A server on a fresh data folder with operators of two units and a write token for each."""
    data = tmp_path_factory.mktemp("probe") / "sohoa-data"
    values = {"SOHOA_DATA_DIR": str(data), "SOHOA_UPLOAD_LIMIT_MB": "2",
              "SOHOA_WEB_REFUSAL_WINDOW_SECONDS": str(REFUSAL_WINDOW_S), "SOHOA_WEB_REFUSAL_ROWS": "5",
              "SOHOA_WEB_MAX_CLIENT_FAILURES": "1000"}
    with env(**values):
        from storage.accounts import Accounts
        from storage.config import Settings, open_catalog

        catalog = open_catalog(Settings.from_env())
        accounts = Accounts(catalog.engine)
        accounts.add_user("an", role="operator", units=[UNIT_A], password=PASSWORD)
        accounts.add_user("dung", role="handler", units=[UNIT_A], password=PASSWORD)
        accounts.add_user("quan", role="admin", units=[], password=PASSWORD)
        tokens = {unit: accounts.add_token(f"scanner-{i}", units=[unit], scopes=["read", "write"])[1]
                  for i, unit in enumerate((UNIT_A, UNIT_B))}
        catalog.close()
    server = WebServer(env=values)
    server.start()
    server.tokens = tokens  # type: ignore[attr-defined]
    yield server
    server.stop()


def client(server: WebServer, unit: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60,
                        headers={"Authorization": f"Bearer {server.tokens[unit]}"})  # type: ignore[attr-defined]


def audit_entries(server: WebServer) -> list:
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog

    catalog = open_catalog(Settings.from_env({"SOHOA_DATA_DIR": server.env["SOHOA_DATA_DIR"]}))
    try:
        return AuditTrail(catalog.engine).entries()
    finally:
        catalog.close()


def leftovers(server: WebServer) -> tuple[set[str], list[Path]]:
    root = Path(server.env["SOHOA_DATA_DIR"]) / "jobs"
    jobs = {d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")} if root.is_dir() else set()
    incoming = root / ".incoming"
    return jobs, sorted(p for p in incoming.rglob("*") if p.is_file()) if incoming.is_dir() else []


def one_sentence(body: dict) -> None:
    for key in ("message_vi", "message_en"):
        text = body[key]
        assert text.endswith(".") and text.count(". ") == 0 and "Traceback" not in text and "Error" not in text, text


def multipart(parts: list[bytes], boundary: str = "sohoa-probe") -> tuple[bytes, dict[str, str]]:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def file_part(name: str, data: bytes) -> bytes:
    return (f'Content-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode() + data


def field_part(name: str, value: str) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode()


# ---------------------------------------------------------------------------------------- item 3
def test_parallel_wrong_passwords_are_throttled(probe):
    anon = httpx.Client(base_url=probe.url, timeout=60)
    csrf = re.search(r'name="csrf" value="([^"]+)"', anon.get("/sign-in").text).group(1)
    codes: list[int] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        r = anon.post("/sign-in", data={"name": "dung", "password": f"sai-{i}", "csrf": csrf})
        with lock:
            codes.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(codes)) == [401, 429], codes
    assert codes.count(401) <= 5, codes
    # The right password now is throttled too (the name had its five tries).
    assert anon.post("/sign-in", data={"name": "dung", "password": PASSWORD, "csrf": csrf}).status_code == 429


def test_throttle_counts_are_atomic(catalog_url):
    """Twenty threads hitting one key get twenty different counts, on SQLite and PostgreSQL."""
    import datetime as dt

    from storage.catalog import Catalog
    from storage.throttle import Throttle

    catalog = Catalog(catalog_url)
    catalog.migrate()
    try:
        throttle = Throttle(catalog.engine)
        counts: list[int] = []
        lock = threading.Lock()

        def hit() -> None:
            c = throttle.hit("sign_in:name:user:x", window=dt.timedelta(minutes=15)).count
            with lock:
                counts.append(c)

        threads = [threading.Thread(target=hit) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(counts) == list(range(1, 21))
        throttle.release("sign_in:name:user:x")
        assert throttle.hit("sign_in:name:user:x", window=dt.timedelta(minutes=15)).count == 20
        # A new window starts from 1 and says how many the window before had.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
        rolled = throttle.hit("sign_in:name:user:x", window=dt.timedelta(minutes=15), now=later)
        assert (rolled.count, rolled.previous) == (1, 20) and rolled.previous_start is not None
        assert throttle.purge(older_than=dt.timedelta(minutes=1), now=later + dt.timedelta(minutes=2)) == 1
    finally:
        catalog.close()


# ---------------------------------------------------------------------------------------- item 5
def test_form_fields_count_in_the_upload_budget(probe):
    scanner = client(probe, UNIT_A)
    url = f"/api/v1/cases/{CASE_NEW}/scans"
    before, _ = leftovers(probe)
    field = "x" * 4000
    # 2.4 MB of fields then a small scan, chunked (no Content-Length): refused long before the end.
    parts = [field_part(f"f{i}", field) for i in range(600)] + [file_part("don.jpg", jpeg())]
    body, headers = multipart(parts)

    def chunks(data: bytes):
        for i in range(0, len(data), 64 * 1024):
            yield data[i:i + 64 * 1024]

    r = scanner.post(url, content=chunks(body), headers=headers)
    assert r.status_code == 413, r.text
    one_sentence(r.json())
    # A scan just under the 2 MB limit plus 120 KB of fields: the fields count in the same budget.
    scan = jpeg() + b"\x00" * (2 * 1024 * 1024 - 4096 - len(jpeg()))
    body, headers = multipart([file_part("don.jpg", scan)] + [field_part(f"f{i}", field) for i in range(30)])
    r = scanner.post(url, content=chunks(body), headers=headers)
    assert r.status_code == 413, r.text
    one_sentence(r.json())
    assert "2 MB" in r.json()["message_vi"]
    # Many small fields: refused by their number.
    body, headers = multipart([field_part(f"f{i}", "1") for i in range(2000)] + [file_part("don.jpg", jpeg())])
    r = scanner.post(url, content=body, headers=headers)
    assert r.status_code == 413, r.text
    one_sentence(r.json())
    after, partial = leftovers(probe)
    assert after == before and partial == []
    # A normal upload right after is received.
    r = scanner.post(url, files={"files": ("don.jpg", jpeg(), "image/jpeg")}, data={"kind": "Đơn"})
    assert r.status_code == 202, r.text


# ---------------------------------------------------------------------------------------- item 6
def test_unauthenticated_refusals_are_throttled_and_aggregated(probe):
    time.sleep(REFUSAL_WINDOW_S + 0.5)  # a fresh window for this address
    start = len(audit_entries(probe))
    anon = httpx.Client(base_url=probe.url, timeout=60)
    for i in range(30):
        assert anon.get(f"/api/v1/cases/{CASE_A}").status_code == 401
        assert anon.get(f"/api/v1/cases/{CASE_A}",
                        headers={"Authorization": f"Bearer sohoa_{secrets.token_hex(8)}_{i}"}).status_code == 401
    for i in range(10):  # the sign-in form with a forged CSRF value: refused, counted the same way
        assert anon.post("/sign-in", data={"name": "an", "password": "x", "csrf": "forged"}).status_code == 403
    burst = [e for e in audit_entries(probe)[start:] if e.actor == "anonymous"]
    assert 1 <= len(burst) <= 6, [(e.action, e.detail) for e in burst]  # 5 a window (+1 aggregate of before)
    time.sleep(REFUSAL_WINDOW_S + 0.5)
    assert anon.get(f"/api/v1/cases/{CASE_A}").status_code == 401
    later = audit_entries(probe)[start + len(burst):]
    [aggregate] = [e for e in later if e.action == "refusals"]
    counted = int(re.match(r"(\d+) more", aggregate.detail).group(1))
    # 30 without a token, 30 × 2 with a bad one, 10 forged sign-ins, minus the 5 written one by one.
    assert counted >= 100 - 5, aggregate.detail
    assert aggregate.outcome == "aggregated" and aggregate.client == "127.0.0.1"


# ---------------------------------------------------------------------------------------- item 7
def test_another_units_job_answers_as_unknown(probe):
    mine, theirs = client(probe, UNIT_A), client(probe, UNIT_B)
    r = mine.post(f"/api/v1/cases/{CASE_NEW}/scans", files={"files": ("don.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    unknown = secrets.token_hex(16)
    for path in ("store", "pages/1"):
        kwargs = {"files": {"files": ("p.jpg", jpeg(), "image/jpeg")}} if path == "pages/1" else {}
        other = theirs.post(f"/api/v1/jobs/{job}/{path}", **kwargs)
        missing = theirs.post(f"/api/v1/jobs/{unknown}/{path}", **kwargs)
        assert (other.status_code, other.json()) == (missing.status_code, missing.json()) == (404, {"detail": "not found"})
    assert theirs.get(f"/api/v1/jobs/{job}").status_code == 404


# ---------------------------------------------------------------------------------------- item 8
def test_local_store_link_is_the_apps_own_url(web_server):
    with signed_in(web_server.url, "lan") as lan:
        [doc] = lan.get(f"/api/v1/cases/{CASE_A}").json()["documents"]
        r = lan.get(f"/api/v1/cases/{CASE_A}/documents/{doc['document_id']}/link")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["url"] == f"{web_server.url}{doc['links']['searchable_pdf']}"
        assert body["expires_at"] is None and body["authenticated"] is True
        assert "file:" not in r.text and "objects" not in r.text
        assert lan.get(body["url"]).content.startswith(b"%PDF")
    # The URL is no bearer of rights: without a sign-in it is refused.
    assert httpx.get(body["url"], timeout=30).status_code == 401


def test_job_errors_show_no_server_path(tmp_path):
    """A damaged PDF's error (pikepdf names the file by its full path) reaches the API without the path."""
    from models import CorruptFile
    from models.jobs import ScanJob
    from pipeline.pdf import inspect_pdf
    from web.routes.desk import job_json

    job_dir = tmp_path / "jobs" / ("a" * 32) / "files" / "01"
    job_dir.mkdir(parents=True)
    (job_dir / "x.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> endobj\n" + b"\x00" * 64)
    with pytest.raises(CorruptFile) as err:
        inspect_pdf(job_dir / "x.pdf")
    assert str(job_dir) in err.value.message_vi  # what the library says, before the API
    job = ScanJob(id="a" * 32, status="failed", case_id=CASE_NEW, operator="an", kind=None, origin="api",
                  error={"code": "CorruptFile", "message_vi": err.value.message_vi, "message_en": err.value.message_en,
                         "detail": str(job_dir)})
    shown = json.dumps(job_json(job), ensure_ascii=False)
    assert str(tmp_path) not in shown and "/files/01/" not in shown
    assert "x.pdf" in job_json(job)["error"]["message_vi"]


# ---------------------------------------------------------------------------------------- item 9
def test_an_empty_file_part_before_a_real_one_is_no_server_error(probe):
    scanner = client(probe, UNIT_A)
    url = f"/api/v1/cases/{CASE_NEW}/scans"
    body, headers = multipart([file_part("", b""), file_part("don.jpg", jpeg())])
    r = scanner.post(url, content=body, headers=headers)
    assert r.status_code == 202, r.text
    job = scanner.get(r.headers["location"]).json()
    assert [f["name"] for f in job["files"]] == ["don.jpg"]
    body, headers = multipart([file_part("rong.jpg", b""), file_part("don.jpg", jpeg())])
    r = scanner.post(url, content=body, headers=headers)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        one_sentence(r.json())


def test_a_session_upload_with_the_csrf_token_as_a_field_gets_one_sentence(probe):
    with signed_in(probe.url, "an") as an:
        csrf = re.search(r'data-csrf="([^"]+)"', an.get("/desk").text).group(1)  # the session's token
        url = f"/api/v1/cases/{CASE_NEW}/scans"
        r = an.post(url, files={"files": ("don.jpg", jpeg(), "image/jpeg")}, data={"csrf": csrf})
        assert r.status_code == 403, r.text
        sentence = r.json()["detail"]
        assert "X-CSRF-Token" in sentence and sentence.count(". ") <= 1 and "Stream" not in sentence
        ok = an.post(url, files={"files": ("don.jpg", jpeg(), "image/jpeg")}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 202, ok.text


def test_a_file_name_with_a_line_break_gets_one_sentence(probe):
    scanner = client(probe, UNIT_A)
    before, _ = leftovers(probe)
    body, headers = multipart([file_part('a"\r\n.jpg', jpeg())])
    r = scanner.post(f"/api/v1/cases/{CASE_NEW}/scans", content=body, headers=headers)
    assert 400 <= r.status_code < 500, r.text
    one_sentence(r.json())
    assert leftovers(probe) == (before, [])


# ---------------------------------------------------------------------------------------- item 10
def test_a_kind_longer_than_64_characters_is_refused_with_one_sentence(probe):
    scanner = client(probe, UNIT_A)
    url = f"/api/v1/cases/{CASE_NEW}/scans"
    before, _ = leftovers(probe)
    for kwargs in ({"data": {"kind": "k" * 3000}}, {"params": {"kind": "k" * 3000}}):
        r = scanner.post(url, files={"files": ("don.jpg", jpeg(), "image/jpeg")}, **kwargs)
        assert r.status_code == 422, r.text
        one_sentence(r.json())
        assert "64" in r.json()["message_vi"]
    assert leftovers(probe) == (before, [])
    r = scanner.post(url, files={"files": ("don.jpg", jpeg(), "image/jpeg")}, data={"kind": "k" * 64})
    assert r.status_code == 202, r.text


# ---------------------------------------------------------------------------------------- item 4 (the admin page)
def test_the_admin_pages_check_compares_with_the_anchors(probe):
    """Last in this module: it cuts the server's trail. The admin page's "verify" sees it, as the CLI does."""
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog
    from tests.test_audit_anchor import cut_tail
    from tests.web_fixtures import run_cli

    catalog = open_catalog(Settings.from_env({"SOHOA_DATA_DIR": probe.env["SOHOA_DATA_DIR"]}))
    trail = AuditTrail(catalog.engine)
    for i in range(5):
        trail.append(actor="user:an", action="view_case", outcome="allowed", client="10.0.0.7", detail=f"GET {i}")
    assert run_cli(probe.env, "audit", "export").returncode == 0
    cut_tail(trail, trail.entries()[-4].seq)
    assert trail.verify() == []
    catalog.close()
    with signed_in(probe.url, "quan") as quan:
        page = quan.get("/admin/audit", params={"verify": "true"})
        assert page.status_code == 200 and "its end was cut" in page.text
