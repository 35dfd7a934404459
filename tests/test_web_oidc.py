"""Single sign-on against a real OpenID Connect provider process (PyPI oidc-provider-mock) started by the test."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port
from tests.web_fixtures import CASE_A, CASE_B, WebServer, run_cli


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    exe = Path(sys.executable).parent / "oidc-provider-mock"
    if not exe.exists() and not shutil.which("oidc-provider-mock"):
        pytest.skip("oidc-provider-mock is not installed (pip install -e '.[test]')")
    port = free_port()
    users = [
        {"sub": "u-1001", "preferred_username": "hanh.sso", "sohoa_role": "handler", "sohoa_units": ["000.00.14.H56"]},
        {"sub": "u-1002", "preferred_username": "no.role"},
    ]
    args = [str(exe if exe.exists() else shutil.which("oidc-provider-mock")), "--port", str(port),
            "--require-nonce", "true"]
    for u in users:
        args += ["--user-claims", json.dumps(u)]
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/.well-known/openid-configuration", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"OIDC provider did not start: {log.read_text()[-1000:]}")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def sso_server(web_data, provider):
    server = WebServer(env={**web_data, "SOHOA_OIDC_ISSUER": provider, "SOHOA_OIDC_CLIENT_ID": "sohoa-web",
                            "SOHOA_OIDC_CLIENT_SECRET": "test-secret"})
    server.start()
    yield server
    server.stop()


def sso_sign_in(server: WebServer, sub: str) -> tuple[httpx.Client, httpx.Response]:
    browser = httpx.Client(base_url=server.url, timeout=30)
    start = browser.get("/sign-in/oidc", params={"next": f"/cases/{CASE_A}"})
    assert start.status_code == 303
    authorize = start.headers["location"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43  # PKCE
    assert query["response_type"] == ["code"] and "nonce" in query and "state" in query
    assert "code_verifier" not in authorize  # the verifier never leaves our side before the token request
    form = httpx.get(authorize)
    assert form.status_code == 200
    answer = httpx.post(authorize, data={"sub": sub})
    assert answer.status_code in (302, 303)
    callback = answer.headers["location"]
    assert callback.startswith(server.url + "/sign-in/oidc/callback")
    return browser, browser.get(callback.removeprefix(server.url))


def test_sso_sign_in_maps_claims_to_role_and_units(sso_server, web_data):
    browser, done = sso_sign_in(sso_server, "u-1001")
    assert done.status_code == 303 and done.headers["location"] == f"/cases/{CASE_A}"
    assert "HttpOnly" in done.headers["set-cookie"]
    assert browser.get(f"/api/v1/cases/{CASE_A}").status_code == 200
    assert browser.get(f"/api/v1/cases/{CASE_B}").status_code == 404
    listed = json.loads(run_cli(web_data, "user", "list", "--json").stdout)
    me = next(u for u in listed if u["name"] == "hanh.sso")
    assert me["role"] == "handler" and me["units"] == ["000.00.14.H56"] and me["oidc"]


def test_sso_account_without_a_role_is_refused_and_audited(sso_server, web_data):
    browser, done = sso_sign_in(sso_server, "u-1002")
    assert done.status_code == 403 and "vai trò" in done.text
    assert browser.get("/api/v1/cases").status_code == 401
    entries = json.loads(run_cli(web_data, "audit", "--json", "--limit", "20").stdout)
    assert any(e["action"] == "sign_in" and e["outcome"] == "failed" and "oidc" in (e["detail"] or "")
               for e in entries)


def test_a_forged_callback_is_refused(sso_server):
    browser = httpx.Client(base_url=sso_server.url)
    browser.get("/sign-in/oidc")
    r = browser.get("/sign-in/oidc/callback", params={"code": "x", "state": "not-the-state"})
    assert r.status_code == 403 and browser.get("/api/v1/cases").status_code == 401
