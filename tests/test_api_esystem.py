"""What the one-stop e-system reads over the API (issue 20, item 4), through a real ``sohoa serve``:
result code, verified signatures, extracted fields and preflight verdicts in the document JSON; search by
result code, citizen ID and document number, scoped to the caller's units; the OpenAPI description.
"""
from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.web_fixtures import CASE_A, env, ingest, run_cli, signed_in

CASE_C = "000.00.31.H56-181012-0003"  # unit 000.00.31.H56: a decision whose page 2 is blurred
CITIZEN_ID = "008085001234"  # on page 1 of the sample dossier (CASE_A) and of CASE_C's decision
NUMBER = "264/QĐ-UBND"


def decision_tiff(path: Path) -> Path:
    """Two pages: a decision with its number, date and a citizen ID; then a page blurred past preflight's bound."""
    from PIL import ImageFilter

    from pipeline.sample import degrade, typeset_page

    first = ["ỦY BAN NHÂN DÂN TỈNH TUYÊN QUANG", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", f"Số: {NUMBER}",
             "Tuyên Quang, ngày 27 tháng 9 năm 2018", "QUYẾT ĐỊNH", "Cấp giấy phép cho ông Nguyễn Văn Hùng,",
             f"căn cước công dân số {CITIZEN_ID} cấp ngày 12 tháng 3 năm 2021."]
    second = ["Điều 2. Quyết định này có hiệu lực kể từ ngày ký.", "Nơi nhận: như Điều 2."]
    a = degrade(typeset_page(first), seed=3)
    b = degrade(typeset_page(second), seed=4).filter(ImageFilter.GaussianBlur(4))
    a.save(path, save_all=True, append_images=[b], compression="tiff_lzw", dpi=(300, 300))
    return path


@pytest.fixture(scope="module")
def case_c(web_data, tmp_path_factory) -> str:
    """CASE_C stored in the web data folder (kept with the blurred page, as ``on_rescan=store``) and agency-signed."""
    from flows.signing import sign_stored

    work = tmp_path_factory.mktemp("case-c")
    with env(**web_data):
        report = ingest(decision_tiff(work / "quyet-dinh.tif"), CASE_C, kind="Quyết định", operator="an.vo",
                        work=work)
        sign_stored(CASE_C, report["document_id"])
    return report["document_id"]


def token(web_data: dict[str, str], name: str, unit: str) -> str:
    res = run_cli(web_data, "token", "add", name, "--unit", unit, "--scope", "read")
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.fixture(scope="module")
def egov(web_server, web_data, case_c) -> httpx.Client:
    """The e-system of unit 000.00.31.H56, with a read token."""
    client = httpx.Client(base_url=web_server.url, timeout=120,
                          headers={"Authorization": f"Bearer {token(web_data, 'egov-31-esystem', '000.00.31.H56')}"})
    yield client
    client.close()


def test_document_json_has_result_code_signatures_and_fields(web_server, web_data):
    with signed_in(web_server.url, "lan") as lan:
        [doc] = lan.get(f"/api/v1/cases/{CASE_A}").json()["documents"]
        one = lan.get(doc["links"]["self"]).json()
    assert doc["result_code"] == f"{CASE_A}-KQ{doc['document_id'][:10].upper()}" == one["result_code"]
    assert doc["signed"] is True
    [sig] = doc["signatures"]
    assert sig["role"] == "agency" and sig["valid"] is True and sig["problems"] == []
    assert sig["level"].startswith("PAdES-B-") and sig["signer"] == "UBND TỈNH THỬ NGHIỆM (TEST) [TEST]"
    assert sig["timestamp"] and "+07:00" in sig["timestamp"] or sig["signed_at"]
    ids = [f for f in doc["extracted"] if f["name"] == "citizen_id"]
    assert [(f["value"], f["page"]) for f in ids] == [(CITIZEN_ID, 1)] and 0 < ids[0]["confidence"] <= 1
    assert one["signatures"] == doc["signatures"] and one["extracted"] == doc["extracted"]
    assert [p["number"] for p in one["pages"]] == [1, 2, 3]


def test_preflight_verdicts_are_those_the_case_page_shows(egov, web_server, case_c):
    doc = egov.get(f"/api/v1/cases/{CASE_C}").json()["documents"][0]
    blurred = [p for p in doc["preflight"] if p["code"] == "blurred"]
    assert [p["page"] for p in blurred] == [2] and blurred[0]["severity"] == "rescan"
    assert blurred[0]["message_vi"].startswith("Trang bị mờ")
    assert egov.get(doc["links"]["self"]).json()["preflight"] == doc["preflight"]
    fields = {f["name"]: f for f in doc["extracted"]}
    assert fields["document_number"]["value"] == NUMBER and fields["document_number"]["page"] == 1
    assert fields["document_date"]["value"] == "2018-09-27"
    assert fields["document_kind"]["value"] == "Quyết định"
    assert "issuing_body" in fields and fields["citizen_id"]["value"] == CITIZEN_ID


def test_search_finds_result_code_citizen_id_and_number_in_own_units(egov, web_server, case_c):
    code = egov.get(f"/api/v1/cases/{CASE_C}").json()["documents"][0]["result_code"]
    for query, matched, page in ((code.lower(), "result_code", None), (CITIZEN_ID, "citizen_id", 1),
                                 (NUMBER, "document_number", 1)):
        found = egov.get("/api/v1/search", params={"q": query}).json()["identifiers"]
        if matched == "citizen_id":
            # Other tests sharing the session's web data may store the same citizen in unit 31 too
            # (tests/test_reuse.py): every hit must be in the caller's unit, and CASE_C among them.
            assert all(f["case_id"].startswith("000.00.31.H56-") for f in found), query
            found = [f for f in found if f["case_id"] == CASE_C]
        assert [(f["case_id"], f["document_id"], f["matched"], f["page"]) for f in found] == \
            [(CASE_C, case_c, matched, page)], query
        assert found[0]["result_code"] == code
    with signed_in(web_server.url, "lan") as lan:
        # The same citizen ID is in a unit-14 dossier too: each unit sees its own document only.
        mine = lan.get("/api/v1/search", params={"q": CITIZEN_ID}).json()["identifiers"]
        assert [f["case_id"] for f in mine] == [CASE_A]
        assert lan.get("/api/v1/search", params={"q": code}).json()["identifiers"] == []
        page = lan.get("/search", params={"q": code})
        assert page.status_code == 200 and f"/cases/{CASE_C}" not in page.text and "Không tìm thấy" in page.text
        own = lan.get("/search", params={"q": lan.get(f"/api/v1/cases/{CASE_A}").json()["documents"][0]["result_code"]})
        assert f'href="/cases/{CASE_A}/documents/' in own.text and "mã kết quả số hóa" in own.text


def test_another_units_token_cannot_find_by_result_code(web_server, web_data, egov, case_c):
    code = egov.get(f"/api/v1/cases/{CASE_C}").json()["documents"][0]["result_code"]
    other = httpx.Client(base_url=web_server.url, timeout=60,
                         headers={"Authorization": f"Bearer {token(web_data, 'egov-22-search', '000.00.22.H56')}"})
    with other:
        for query in (code, CITIZEN_ID, NUMBER):
            found = other.get("/api/v1/search", params={"q": query})
            assert found.status_code == 200 and found.json()["identifiers"] == [], query
        # Naming the unit it does not hold is refused as if there were nothing (and audited).
        assert other.get("/api/v1/search", params={"q": code, "unit": "000.00.31.H56"}).status_code == 404
        assert other.get(f"/api/v1/cases/{CASE_C}").status_code == 404
    searches = [e for e in audit_entries(web_data, actor="token:egov-22-search") if e.action == "search"]
    assert {e.outcome for e in searches} == {"allowed", "not_found"}


def audit_entries(web_data: dict[str, str], **filters: str) -> list:
    with env(**web_data):
        from storage.audit import AuditTrail
        from storage.config import Settings, open_catalog

        catalog = open_catalog(Settings.from_env())
        try:
            return AuditTrail(catalog.engine).entries(**filters)
        finally:
            catalog.close()


def test_openapi_describes_the_document_json(web_server):
    spec = httpx.get(f"{web_server.url}/api/v1/openapi.json").json()
    schemas = spec["components"]["schemas"]
    props = schemas["DocumentOut"]["properties"]
    for name in ("result_code", "signatures", "extracted", "preflight", "reused_from"):
        assert name in props, name
    assert set(schemas["Signature"]["properties"]) >= {"signer", "signed_at", "timestamp", "level", "valid", "problems"}
    assert set(schemas["ExtractedValue"]["properties"]) >= {"name", "value", "page", "confidence", "box"}
    assert set(schemas["PreflightVerdict"]["properties"]) >= {"page", "code", "severity", "message_vi"}
    ok = spec["paths"]["/api/v1/cases/{case}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert re.search(r"CaseOut$", ok["$ref"])
    assert "identifiers" in schemas["SearchOut"]["properties"]
    assert "/api/v1/cases/{case}/reuse" in spec["paths"]


def test_signature_verdicts_are_cached_per_stored_pdf(web_data, case_c):
    from storage.config import Settings, open_catalog, open_store
    from web.esystem import SignatureCache

    with env(**web_data):
        settings = Settings.from_env()
        catalog = open_catalog(settings)
        [rec] = catalog.documents_for_case(CASE_C)
        catalog.close()
        cache = SignatureCache()
        store = open_store(settings)
        first = cache.signatures(store, rec.keys["searchable_pdf"], data_dir=settings.data_dir)
        again = cache.signatures(store, rec.keys["searchable_pdf"], data_dir=settings.data_dir)
    assert first == again and [s["valid"] for s in first] == [True]
    assert cache.verifications == 1
