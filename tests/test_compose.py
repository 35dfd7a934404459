"""docker-compose.yml is a valid compose file with the production shape (checked by docker-compose itself)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"minio", "minio-init", "postgres", "prefect-server", "worker", "web"}


def _compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose; the test bootstrap "
                    "installs it): the compose file was not checked")
    return exe


def _config(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_compose(), "-f", "docker-compose.yml", "--env-file", ".env.example", "config", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_compose_file_is_accepted_and_has_every_service() -> None:
    result = _config()
    assert result.returncode == 0, result.stderr
    services = _config("--services")
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) >= SERVICES


def test_workers_are_pointed_at_minio_and_postgres() -> None:
    yaml = pytest.importorskip("yaml")
    result = _config()
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    env = config["services"]["worker"]["environment"]
    assert env["SOHOA_S3_ENDPOINT"] == "minio:9000"
    assert env["SOHOA_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env[
        "SOHOA_DATABASE_URL"]
    for name in ("SOHOA_S3_ACCESS_KEY", "SOHOA_S3_SECRET_KEY", "SOHOA_S3_BUCKET", "SOHOA_DATA_DIR"):
        assert env[name], name
    # The spool lives under SOHOA_DATA_DIR: it must be on a volume, or a restart would lose waiting scans.
    targets = [v.get("target") if isinstance(v, dict) else str(v).split(":")[1]
               for v in config["services"]["worker"]["volumes"]]
    assert "/data" in targets


def _config_yaml() -> dict:
    yaml = pytest.importorskip("yaml")
    result = _config()
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_workers_use_a_scoped_minio_user_not_root() -> None:
    import json
    import re

    config = _config_yaml()
    env = config["services"]["worker"]["environment"]
    root_user = config["services"]["minio"]["environment"]["MINIO_ROOT_USER"]
    root_password = config["services"]["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    assert env["SOHOA_S3_ACCESS_KEY"] != root_user and env["SOHOA_S3_SECRET_KEY"] != root_password
    for name, service in config["services"].items():  # only MinIO itself and minio-init hold root
        if name not in ("minio", "minio-init"):
            assert root_password not in json.dumps(service), f"{name} holds MinIO's root password"
    init = config["services"]["minio-init"]
    script = " ".join(init.get("command") or []) + " ".join(init.get("entrypoint") or [])
    assert "mc admin user add" in script and "mc admin policy attach" in script
    # The policy names the bucket only: every Resource is the bucket or objects in it, no wildcard bucket.
    policy = re.search(r"printf '(\{.*?\})'", script).group(1)
    bucket = env["SOHOA_S3_BUCKET"]
    resources = [r.replace("%s", bucket) for st in json.loads(policy)["Statement"] for r in st["Resource"]]
    assert resources and all(r in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*") for r in resources)
    assert not any(a in ("s3:*", "admin:*") for st in json.loads(policy)["Statement"] for a in st["Action"])


def test_prefect_api_is_not_published_on_a_public_interface() -> None:
    config = _config_yaml()
    for name in ("prefect-server",):
        for port in config["services"][name].get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") in ("127.0.0.1", "::1"), f"{name} publishes {port}"
            else:
                assert str(port).startswith(("127.0.0.1:", "[::1]:")), f"{name} publishes {port}"


def test_web_uses_the_same_store_and_catalog_as_the_workers() -> None:
    yaml = pytest.importorskip("yaml")
    result = _config()
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    web, worker = services["web"]["environment"], services["worker"]["environment"]
    for name in ("SOHOA_S3_ENDPOINT", "SOHOA_S3_BUCKET", "SOHOA_DATABASE_URL"):
        assert web[name] == worker[name], name
    assert "sohoa serve" in " ".join(services["web"]["command"]) if isinstance(services["web"]["command"], list) \
        else "sohoa serve" in services["web"]["command"]
