"""Reusing an e-copy digitized before (issue 20, item 6), through a real ``sohoa serve``: a second unit
attaches a first unit's stored document by result code + citizen ID; wrong IDs and guessed codes get the
same 404 and are audited; nothing else of the original case becomes visible.
"""
from __future__ import annotations

import io
import re
import zipfile

import httpx
import pytest

from tests.web_fixtures import env, ingest, run_cli, signed_in

SOURCE = "000.00.31.H56-181013-0004"  # unit 31: two documents, the first carries the citizen ID
NEW = "000.00.22.H56-181020-0005"     # unit 22: the citizen's new case
DESK_NEW = "000.00.14.H56-181021-0006"  # unit 14: a new case attached from the desk form
CITIZEN_ID = "008085001234"  # on page 1 of the sample dossier


@pytest.fixture(scope="module")
def source(web_data, sample_dossier, tmp_path_factory) -> dict[str, str]:
    """SOURCE stored with two documents; the first agency-signed (so extracted and given a result code)."""
    from flows.signing import sign_stored

    work = tmp_path_factory.mktemp("reuse")
    with env(**web_data):
        first = ingest(sample_dossier[1], SOURCE, kind="Đơn đề nghị", operator="an.vo", work=work)
        second = ingest(sample_dossier[3], SOURCE, kind="Giấy tiếp nhận", operator="an.vo", work=work)
        signed = sign_stored(SOURCE, first["document_id"])
    return {"doc": first["document_id"], "other": second["document_id"], "code": signed["result_code"]}


@pytest.fixture(scope="module")
def desk22(web_server, web_data) -> httpx.Client:
    """Unit 22's desk software: a token with the read and write scopes."""
    res = run_cli(web_data, "token", "add", "desk-22", "--unit", "000.00.22.H56", "--scope", "read", "--scope", "write")
    assert res.returncode == 0, res.stderr
    client = httpx.Client(base_url=web_server.url, timeout=120, headers={"Authorization": f"Bearer {res.stdout.strip()}"})
    yield client
    client.close()


def audit(web_data: dict[str, str], case_id: str) -> list:
    with env(**web_data):
        from storage.audit import AuditTrail
        from storage.config import Settings, open_catalog

        catalog = open_catalog(Settings.from_env())
        try:
            return AuditTrail(catalog.engine).entries(case_id=case_id)
        finally:
            catalog.close()


def outbox_events(web_data: dict[str, str], unit: str) -> list[tuple[str, str, dict]]:
    import sqlalchemy as sa

    from storage.outbox import outbox_events as events

    with env(**web_data):
        from storage.config import Settings, open_catalog

        catalog = open_catalog(Settings.from_env())
        with catalog.engine.connect() as conn:
            rows = conn.execute(sa.select(events.c.type, events.c.case_id, events.c.data)
                                .where(events.c.unit == unit).order_by(events.c.id)).all()
        catalog.close()
    return [(r.type, r.case_id, r.data) for r in rows]


def test_wrong_id_or_guessed_code_is_the_same_404_and_audited(desk22, web_data, source):
    url = f"/api/v1/cases/{NEW}/reuse"
    wrong_id = desk22.post(url, json={"result_code": source["code"], "citizen_id": "001085009999"})
    guessed = desk22.post(url, json={"result_code": f"{SOURCE}-KQ0123456789", "citizen_id": CITIZEN_ID})
    garbage = desk22.post(url, json={"result_code": "not a code", "citizen_id": CITIZEN_ID})
    assert wrong_id.status_code == guessed.status_code == garbage.status_code == 404
    assert wrong_id.json() == guessed.json() == garbage.json()
    assert desk22.get(f"/api/v1/cases/{NEW}").status_code == 404
    refused = [e for e in audit(web_data, NEW) if e.action == "reuse_document"]
    assert [e.outcome for e in refused] == ["not_found"] * 3
    assert "citizen ID does not match" in refused[0].detail and CITIZEN_ID not in " ".join(e.detail for e in refused)
    # A read-only token may not attach at all.
    res = run_cli(web_data, "token", "add", "read-22", "--unit", "000.00.22.H56", "--scope", "read")
    reader = httpx.Client(base_url=desk22.base_url, headers={"Authorization": f"Bearer {res.stdout.strip()}"})
    assert reader.post(url, json={"result_code": source["code"], "citizen_id": CITIZEN_ID}).status_code == 403


def test_another_unit_attaches_the_e_copy_and_sees_nothing_else(desk22, web_server, web_data, source):
    url = f"/api/v1/cases/{NEW}/reuse"
    hook = run_cli(web_data, "webhook", "add", "http://127.0.0.1:9/egov-22", "--unit", "000.00.22.H56")
    assert hook.returncode == 0, hook.stderr
    made = desk22.post(url, json={"result_code": source["code"].lower(), "citizen_id": CITIZEN_ID})
    assert made.status_code == 201, made.text
    doc = made.json()
    assert (doc["case_id"], doc["document_id"], doc["reused_from"]) == (NEW, source["doc"], SOURCE)
    assert doc["result_code"] == source["code"] and [s["valid"] for s in doc["signatures"]] == [True]
    assert desk22.post(url, json={"result_code": source["code"], "citizen_id": CITIZEN_ID}).status_code == 201

    case = desk22.get(f"/api/v1/cases/{NEW}").json()
    assert [(d["document_id"], d["reused_from"]) for d in case["documents"]] == [(source["doc"], SOURCE)]
    pdf = desk22.get(doc["links"]["searchable_pdf"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    names = zipfile.ZipFile(io.BytesIO(desk22.get(f"/api/v1/cases/{NEW}/files.zip").content)).namelist()
    assert len(names) == 1 and source["doc"][:8] in names[0]
    # The same stored object, not a copy: the store holds it under the original case's key only.
    with env(**web_data):
        from storage.config import Settings, open_store

        keys = list(open_store(Settings.from_env()).list(f"cases/{NEW}/"))
    assert keys == []
    # Nothing else of the original case: not its other document, not the case itself, not its search.
    for path in (f"/api/v1/cases/{NEW}/documents/{source['other']}",
                 f"/api/v1/cases/{NEW}/documents/{source['other']}/searchable.pdf",
                 f"/api/v1/cases/{SOURCE}", f"/api/v1/cases/{SOURCE}/documents/{source['doc']}"):
        assert desk22.get(path).status_code == 404, path
    assert desk22.get("/api/v1/search", params={"q": "tiếp nhận hồ sơ"}).json()["cases"] == []

    # Unit 22's e-system is told once, under the new case; unit 31's dossier stays its own.
    told = outbox_events(web_data, "000.00.22.H56")
    assert [(t, c, d["document_id"], d["reused_from"]) for t, c, d in told] == [
        ("document.stored", NEW, source["doc"], SOURCE)]
    mine = [e for e in audit(web_data, NEW) if e.action == "reuse_document" and e.outcome == "allowed"]
    theirs = [e for e in audit(web_data, SOURCE) if e.action == "reused_by"]
    assert mine and SOURCE in mine[0].detail and mine[0].actor == "token:desk-22"
    assert theirs and NEW in theirs[0].detail and theirs[0].document_id == source["doc"]


def test_desk_form_attaches_and_says_plainly_when_nothing_matches(web_server, source):
    with signed_in(web_server.url, "hoa") as hoa:
        desk = hoa.get("/desk").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', desk).group(1)
        assert 'action="/desk/reuse"' in desk
        form = {"csrf": csrf, "case": DESK_NEW, "result_code": source["code"], "citizen_id": "079085001111"}
        wrong = hoa.post("/desk/reuse", data=form)
        assert wrong.status_code == 303 and wrong.headers["location"] == "/desk?reuse=not-found"
        assert "Không tìm thấy bản điện tử" in hoa.get(wrong.headers["location"]).text
        assert hoa.post("/desk/reuse", data={**form, "csrf": "x", "citizen_id": CITIZEN_ID}).status_code == 403
        ok = hoa.post("/desk/reuse", data={**form, "citizen_id": CITIZEN_ID})
        assert ok.status_code == 303 and ok.headers["location"] == f"/cases/{DESK_NEW}"
        page = hoa.get(f"/cases/{DESK_NEW}")
        assert page.status_code == 200 and source["doc"] in page.text and source["other"] not in page.text
        # An operator of unit 14 cannot attach to another unit's case.
        other = hoa.post("/desk/reuse", data={**form, "case": "000.00.22.H56-181020-0007", "citizen_id": CITIZEN_ID})
        assert other.headers["location"] == "/desk?reuse=forbidden"


def test_admin_page_lists_webhooks_and_deliveries_without_the_secret(web_server, web_data):
    res = run_cli(web_data, "webhook", "add", "http://127.0.0.1:9/egov", "--unit", "000.00.31.H56",
                  "--events", "document.stored,document.signed")
    assert res.returncode == 0, res.stderr
    secret = res.stdout.strip()
    with signed_in(web_server.url, "quan") as quan:
        page = quan.get("/admin/webhooks")
        assert page.status_code == 200 and "Nhật ký gửi" in page.text and "http://127.0.0.1:9/egov" in page.text
        assert secret not in page.text and "document.stored, document.signed" in page.text
    with signed_in(web_server.url, "lan") as lan:
        assert lan.get("/admin/webhooks").status_code == 403
    bad = run_cli(web_data, "webhook", "add", "ftp://x/y", "--unit", "000.00.31.H56")
    assert bad.returncode == 2 and "http(s)" in bad.stderr and "Traceback" not in bad.stderr
