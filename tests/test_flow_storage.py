"""The intake flow against real servers: SeaweedFS (S3), PostgreSQL (catalog) and a Prefect test server.

One full ingest of the 3-page sample TIFF is shared by the case-handler checks (search, get, link,
verify, reindex). The fault tests each OCR one single-page JPEG: the S3 server is stopped right
after the original is stored and started again while the store-results task retries; and the
server is down for a whole run, so the scan waits in the spool until ``sohoa retry`` sends it.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterator

import pytest

from cli.main import main
from storage.archive import Archive
from storage.textsearch import fold
from storage.objectstore import manifest_key
from tests.servers import fetch, temporary_pg_database

CASE = "000.00.14.H56-200203-0118"
CASE_FAULT = "000.00.14.H56-200203-0119"
CASE_SPOOL = "000.00.14.H56-200203-0120"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flow_env(s3_server, prefect_harness, tmp_path_factory) -> Iterator[dict[str, str]]:
    """SOHOA_* pointing at the session's SeaweedFS (own bucket) and a fresh PostgreSQL database."""
    if not s3_server.is_running():
        s3_server.start()
    with temporary_pg_database() as database_url, pytest.MonkeyPatch.context() as mp:
        env = {
            "SOHOA_DATA_DIR": str(tmp_path_factory.mktemp("flow-data")),
            "SOHOA_S3_ENDPOINT": s3_server.endpoint,
            "SOHOA_S3_ACCESS_KEY": s3_server.access_key,
            "SOHOA_S3_SECRET_KEY": s3_server.secret_key,
            "SOHOA_S3_BUCKET": f"flow-{secrets.token_hex(4)}",
            "SOHOA_DATABASE_URL": database_url,
        }
        for k, v in env.items():
            mp.setenv(k, v)
        try:
            yield env
        finally:
            if not s3_server.is_running():
                s3_server.start()


@pytest.fixture(scope="module")
def ingested(flow_env, sample_dossier) -> dict:
    """The sample TIFF (3 pages) ingested once through the intake flow."""
    from flows.desk import intake

    [result] = intake(files=[str(sample_dossier[0])], case_id=CASE, kind="Đơn đề nghị", operator="thu.nguyen")
    assert result["status"] == "stored", result
    return result


@pytest.fixture()
def server_back(s3_server) -> Iterator[None]:
    """Whatever a fault test does, the S3 server is running again afterwards."""
    yield
    if not s3_server.is_running():
        s3_server.start()


def _archive() -> Archive:
    from flows.common import open_archive

    return open_archive()


def _search(text: str, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["search", text, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# ----------------------------------------------------------------------------- the happy path
def test_intake_stores_the_original_pdf_and_words_under_the_case(ingested, sample_dossier) -> None:
    archive = _archive()
    [rec] = archive.manifest_records(CASE)
    assert rec.document_id == ingested["document_id"] and rec.page_count == 3
    assert set(rec.keys) == {"source", "searchable_pdf", "ocr_json"}
    assert rec.source_sha256 == hashlib.sha256(sample_dossier[0].read_bytes()).hexdigest()
    assert archive.store.get_bytes(rec.keys["source"]) == sample_dossier[0].read_bytes()
    stat = archive.store.stat(rec.keys["searchable_pdf"])
    assert stat.metadata["case-id"] == CASE and stat.metadata["document-id"] == rec.document_id


@pytest.mark.parametrize("query", ["quyet dinh", "Quyết Định", "ke hoach cai cach"])
def test_search_finds_the_decision_page_with_or_without_diacritics(ingested, capsys, query) -> None:
    hits = _search(query, capsys)
    assert hits and hits[0]["case_id"] == CASE and hits[0]["document_id"] == ingested["document_id"]
    assert 2 in {h["page"] for h in hits}  # the page with "QUYẾT ĐỊNH về việc ban hành Kế hoạch …"
    top = next(h for h in hits if h["page"] == 2)
    assert "«" in top["snippet"]
    assert all(w in fold(top["snippet"]) for w in fold(query).split())


def test_get_writes_the_pdf_and_the_original(ingested, sample_dossier, tmp_path, capsys) -> None:
    assert main(["get", CASE, "-o", str(tmp_path / "out")]) == 0
    files = {p.suffix: p for p in (tmp_path / "out").iterdir()}
    assert files[".tif"].read_bytes() == sample_dossier[0].read_bytes()
    pdf = next(p for p in (tmp_path / "out").iterdir() if p.name.endswith(".pdf"))
    assert pdf.read_bytes().startswith(b"%PDF-")
    [rec] = _archive().manifest_records(CASE)
    manifest = json.loads(_archive().store.get_bytes(manifest_key(CASE)))
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == manifest["documents"][0]["checksums"]["searchable_pdf"]


def test_link_urls_download_the_same_bytes(ingested, capsys) -> None:
    capsys.readouterr()
    assert main(["link", CASE, "--expires", "30m", "--json"]) == 0
    [link] = json.loads(capsys.readouterr().out)
    assert link["url"].startswith("http://") and "X-Amz-Expires=1800" in link["url"]
    archive = _archive()
    assert fetch(link["url"]) == archive.store.get_bytes(archive.manifest_records(CASE)[0].keys["searchable_pdf"])


def test_verify_is_clean_then_reports_a_tampered_object(ingested, capsys) -> None:
    capsys.readouterr()
    assert main(["verify", CASE]) == 0
    assert "mọi mã SHA-256 đều khớp" in capsys.readouterr().out
    archive = _archive()
    key = archive.manifest_records(CASE)[0].keys["ocr_json"]
    good = archive.store.get_bytes(key)
    archive.store.put_bytes(key, good.replace(b"QUY", b"QUX", 1), metadata={}, content_type="application/json")
    try:
        assert main(["verify", CASE]) == 5
        out = capsys.readouterr().out
        [line] = [ln for ln in out.splitlines() if key in ln]
        assert "SAI MÃ SHA-256" in line and "the manifest recorded" in line
    finally:
        archive.store.put_bytes(key, good, metadata={}, content_type="application/json")
    assert main(["verify"]) == 0


def test_reindex_after_dropping_the_catalog_finds_the_same_hits(ingested, capsys) -> None:
    before = _search("quyet dinh", capsys)
    _archive().catalog.drop_all()
    assert main(["reindex", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["documents"] >= 1 and counts["pages"] >= 3
    after = _search("quyet dinh", capsys)
    key = lambda h: (h["case_id"], h["document_id"], h["page"])  # noqa: E731
    assert [key(h) for h in after] == [key(h) for h in before]


# --------------------------------------------------------------------------------------- faults
def _versions(archive: Archive, key: str) -> list[str]:
    return archive.store.versions(key)


def test_server_stopped_mid_run_the_flow_retries_and_stores_once(flow_env, sample_dossier, s3_server, server_back,
                                                                  monkeypatch, capsys) -> None:
    """Stop S3 right after the original is stored; start it again once store-results has failed once."""
    real_original, real_derived = Archive.store_original, Archive.store_derived
    derived_calls: list[str] = []
    attempted_while_down = threading.Event()
    restarted: list[BaseException | None] = []

    def original_then_stop(self, **kw):
        stored = real_original(self, **kw)
        if s3_server.is_running():
            s3_server.stop()
        return stored

    def derived(self, **kw):
        derived_calls.append(kw["role"])
        if not s3_server.is_running():
            attempted_while_down.set()
        return real_derived(self, **kw)

    def restart_later() -> None:
        attempted_while_down.wait(timeout=300)
        try:
            s3_server.start()
            restarted.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            restarted.append(exc)

    monkeypatch.setattr(Archive, "store_original", original_then_stop)
    monkeypatch.setattr(Archive, "store_derived", derived)
    restarter = threading.Thread(target=restart_later, daemon=True)
    restarter.start()

    from flows.desk import intake

    page = sample_dossier[2]  # page2.jpg: the decision
    [result] = intake(files=[str(page)], case_id=CASE_FAULT, kind="Quyết định")
    attempted_while_down.set()
    restarter.join(timeout=120)
    assert restarted == [None]
    assert result["status"] == "stored", result
    assert derived_calls.count("searchable_pdf") >= 2  # the first attempt met the stopped server

    archive = _archive()
    [rec] = archive.manifest_records(CASE_FAULT)
    assert rec.source_sha256 == hashlib.sha256(page.read_bytes()).hexdigest()
    for key in rec.keys.values():
        assert len(_versions(archive, key)) == 1, key
    assert archive.verify(CASE_FAULT) == []
    hits = [h for h in _search("quyet dinh", capsys) if h["case_id"] == CASE_FAULT]
    assert [h["document_id"] for h in hits] == [rec.document_id]


def test_server_down_for_the_whole_run_spools_then_retry_sends_once(flow_env, sample_dossier, s3_server,
                                                                    server_back, monkeypatch, capsys) -> None:
    import flows.intake as intake_mod
    from flows.desk import intake
    from flows.spool import pending_jobs

    # The real retries, without the real waits (2, 10, 30 s).
    monkeypatch.setattr(intake_mod.store_original, "retry_delay_seconds", [0.1, 0.1, 0.1])
    calls = []
    real_original = Archive.store_original
    monkeypatch.setattr(Archive, "store_original", lambda self, **kw: calls.append(1) or real_original(self, **kw))

    page = sample_dossier[3]  # page3.jpg: the receipt
    s3_server.stop()
    [result] = intake(files=[str(page)], case_id=CASE_SPOOL, operator="thu.nguyen")
    assert len(calls) == intake_mod.STORE_RETRIES + 1
    assert result["status"] == "spooled" and result["exit_code"] == 5
    assert "hàng đợi" in result["message_vi"] and "spool" in result["message_en"]
    [job] = [j for j in pending_jobs() if j.case_id == CASE_SPOOL]
    assert job.path.read_bytes() == page.read_bytes() and job.path.name == page.name
    assert job.operator == "thu.nguyen"

    # Spooling the same scan again (a second attempt while still down) is the same job.
    [again] = intake(files=[str(page)], case_id=CASE_SPOOL, operator="thu.nguyen")
    assert again["status"] == "spooled"
    [job2] = [j for j in pending_jobs() if j.case_id == CASE_SPOOL]
    assert job2.directory == job.directory and job2.attempts == 2

    # Still down: retry keeps the job and says so (exit 5).
    capsys.readouterr()
    assert main(["retry"]) == 5
    assert "vẫn chờ" in capsys.readouterr().out
    assert [j.directory for j in pending_jobs()] == [job.directory]

    s3_server.start()
    assert main(["retry"]) == 0
    assert pending_jobs() == []
    assert main(["retry"]) == 0
    assert "Hàng đợi trống" in capsys.readouterr().out

    archive = _archive()
    [rec] = archive.manifest_records(CASE_SPOOL)
    assert rec.source_name == page.name and rec.operator == "thu.nguyen"
    for key in rec.keys.values():
        assert len(_versions(archive, key)) == 1, key
    hits = [h for h in _search("tiep nhan ho so", capsys) if h["case_id"] == CASE_SPOOL]
    assert hits and {h["document_id"] for h in hits} == {rec.document_id}
    # The operator scanning it again now is told it is already stored: nothing duplicated.
    [rerun] = intake(files=[str(page)], case_id=CASE_SPOOL)
    assert rerun["status"] == "already-stored"
    assert len(archive.manifest_records(CASE_SPOOL)) == 1


def test_scan_exits_5_when_the_scan_is_spooled(flow_env, sample_dossier, s3_server, server_back,
                                               monkeypatch, capsys) -> None:
    import flows.intake as intake_mod

    monkeypatch.setattr(intake_mod.store_original, "retry_delay_seconds", [0.1, 0.1, 0.1])
    s3_server.stop()
    rc = main(["scan", str(sample_dossier[1]), "--case", CASE_SPOOL, "--json"])
    [result] = json.loads(capsys.readouterr().out)
    assert result["status"] == "spooled"
    s3_server.start()
    assert main(["retry"]) == 0
    assert rc == 5


def test_server_down_while_storing_results_spools_with_the_original_kept(flow_env, sample_dossier, s3_server,
                                                                           server_back, monkeypatch,
                                                                           capsys) -> None:
    """Down after the original is stored and through every store-results retry: spooled; retry finishes."""
    import flows.intake as intake_mod
    from flows.desk import intake
    from flows.spool import pending_jobs

    case = "000.00.14.H56-200203-0121"
    monkeypatch.setattr(intake_mod.store_results, "retry_delay_seconds", [0.1, 0.1, 0.1])
    real_original = Archive.store_original

    def original_then_stop(self, **kw):
        stored = real_original(self, **kw)
        s3_server.stop()
        return stored

    monkeypatch.setattr(Archive, "store_original", original_then_stop)
    page = sample_dossier[1]  # page1.jpg: the application form
    [result] = intake(files=[str(page)], case_id=case)
    assert result["status"] == "spooled" and result["exit_code"] == 5
    assert "bản gốc đã được lưu" in result["message_vi"] and "original is already stored" in result["message_en"]
    monkeypatch.setattr(Archive, "store_original", real_original)

    s3_server.start()
    archive = _archive()
    assert archive.manifest_records(case) == []  # not recorded yet, but the original is safe
    assert main(["retry"]) == 0
    assert [j for j in pending_jobs() if j.case_id == case] == []
    [rec] = archive.manifest_records(case)
    for key in rec.keys.values():
        assert len(_versions(archive, key)) == 1, key  # the original was not sent twice
    assert archive.store.get_bytes(rec.keys["source"]) == page.read_bytes()


def test_access_denied_stops_at_once_and_is_not_spooled(flow_env, sample_dossier, monkeypatch) -> None:
    """A failure no retry can fix ends the document at once with a sentence; the spool is not for it."""
    from flows.desk import intake
    from flows.spool import pending_jobs

    case = "000.00.14.H56-200203-0122"
    monkeypatch.setenv("SOHOA_S3_SECRET_KEY", "not-the-secret")
    calls = []
    real_original = Archive.store_original
    monkeypatch.setattr(Archive, "store_original", lambda self, **kw: calls.append(1) or real_original(self, **kw))
    [result] = intake(files=[str(sample_dossier[1])], case_id=case)
    assert result["status"] == "failed" and result["exit_code"] == 5
    assert result["error_type"] == "StorageError"
    assert "refused" in result["message_en"] and "từ chối" in result["message_vi"]
    assert len(calls) <= 1  # no retries
    assert [j for j in pending_jobs() if j.case_id == case] == []
