"""The web app in its production shape: two replicas on PostgreSQL and a SeaweedFS S3 store."""
from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import urllib.parse

import httpx
import pytest

from tests.servers import fetch, temporary_pg_database
from tests.web_fixtures import CASE_A, WebServer, run_cli, seed, signed_in


@pytest.fixture(scope="module")
def production(tmp_path_factory, s3_server, sample_dossier):
    with temporary_pg_database() as pg:
        values = {"SOHOA_DATABASE_URL": pg, "SOHOA_S3_ENDPOINT": s3_server.endpoint,
                  "SOHOA_S3_ACCESS_KEY": s3_server.access_key, "SOHOA_S3_SECRET_KEY": s3_server.secret_key,
                  "SOHOA_S3_BUCKET": f"web-{secrets.token_hex(4)}"}
        data = seed(tmp_path_factory.mktemp("prod") / "sohoa-data", sample_dossier, extra_env=values,
                    documents=[(2, CASE_A, "Quyết định", "binh.le")])
        one, two = WebServer(env=data), WebServer(env=data)
        one.start()
        two.start()
        yield data, one, two
        one.stop()
        two.stop()


def test_two_replicas_on_postgresql_and_s3(production):
    data, one, two = production
    with signed_in(one.url, "lan") as lan:
        # The session made on replica one works on replica two: it lives in PostgreSQL.
        other = httpx.Client(base_url=two.url, cookies={"sohoa_session": lan.cookies.get("sohoa_session")})
        found = other.get("/api/v1/search", params={"q": "quyet dinh"}).json()["cases"]
        assert [g["case_id"] for g in found] == [CASE_A]
        doc = found[0]["hits"][0]["document_id"]
        url = f"/api/v1/cases/{CASE_A}/documents/{doc}/searchable.pdf"
        full = lan.get(url)
        part = other.get(url, headers={"Range": "bytes=0-1023"})
        assert full.status_code == 200 and part.status_code == 206 and part.content == full.content[:1024]
        assert full.headers["etag"] == part.headers["etag"]
        link = lan.get(f"/api/v1/cases/{CASE_A}/documents/{doc}/link").json()["url"]
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["X-Amz-Expires"] == ["900"]
        assert fetch(link) == full.content
        with signed_in(two.url, "minh") as minh:
            assert minh.get(f"/cases/{CASE_A}").status_code == 404
    assert run_cli(data, "audit", "verify").returncode == 0
    exported = run_cli(data, "audit", "export")
    day = dt.datetime.now(dt.UTC).date().isoformat()
    assert exported.returncode == 0 and f"audit/{day}.jsonl" in exported.stdout
    from storage.config import Settings, open_store

    lines = open_store(Settings.from_env(data)).get_bytes(f"audit/{day}.jsonl").decode().splitlines()
    entries = [json.loads(x) for x in lines]
    assert {("user:minh", "view_case", "not_found"), ("user:lan", "link", "allowed")} <= {
        (e["actor"], e["action"], e["outcome"]) for e in entries}
    assert all(re.fullmatch(r"[0-9a-f]{64}", e["sha256"]) for e in entries)
