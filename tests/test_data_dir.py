"""Where the data lives does not depend on the current folder (issue 9 item 3)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from storage.config import Settings, default_data_dir

REPO = Path(__file__).resolve().parents[1]


def sohoa(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_") and k != "XDG_DATA_HOME"}
    env["PYTHONPATH"] = str(REPO)
    return env | extra


def test_default_is_one_fixed_place_per_user_and_sohoa_data_dir_overrides():
    assert Settings.from_env({"HOME": "/home/an"}).data_dir == Path("/home/an/.local/share/sohoa")
    assert default_data_dir({"HOME": "/home/an", "XDG_DATA_HOME": "/srv/xdg"}) == Path("/srv/xdg/sohoa")
    assert default_data_dir({"HOME": "/home/an", "XDG_DATA_HOME": "relative/x"}) == Path(
        "/home/an/.local/share/sohoa")  # the XDG spec ignores relative paths
    assert Settings.from_env({"HOME": "/home/an", "SOHOA_DATA_DIR": "/data/sohoa"}).data_dir == Path("/data/sohoa")


def test_every_folder_sees_the_same_data_dir_shown_in_help_and_info(tmp_path):
    xdg = tmp_path / "xdg"
    env = _env(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(xdg),
               SOHOA_DATABASE_URL="postgresql://sohoa:hunter2-secret@db.example:5432/sohoa",
               PREFECT_API_URL="http://admin:tok-secret@prefect.example:4200/api")
    seen = []
    for cwd in (tmp_path, REPO / "tests"):
        res = sohoa("info", "--json", cwd=cwd, env=env)
        assert res.returncode == 0, res.stderr
        assert "hunter2" not in res.stdout + res.stderr and "tok-secret" not in res.stdout + res.stderr
        info = json.loads(res.stdout)
        seen.append(info["data_dir"])
        assert info["data_dir_from"] == "default" and info["prefect_api"] == "http://***@prefect.example:4200/api"
        assert info["catalog"] == "postgresql://sohoa:***@db.example:5432/sohoa"
        assert {"sohoa", "python", "tesseract", "prefect"} <= set(info["versions"])
    assert seen == [str(xdg / "sohoa")] * 2
    helped = sohoa("--help", cwd=tmp_path, env=env)
    assert str(xdg / "sohoa") in " ".join(helped.stdout.split()) and "SOHOA_DATA_DIR" in helped.stdout
    plain = sohoa("info", cwd=tmp_path, env=_env(SOHOA_DATA_DIR=str(tmp_path / "mine")))
    assert str(tmp_path / "mine") in plain.stdout and "SOHOA_DATA_DIR" in plain.stdout


def test_an_old_sohoa_data_in_the_current_folder_is_warned_about_once(tmp_path):
    (tmp_path / "sohoa-data" / "objects").mkdir(parents=True)
    env = _env(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "xdg"))
    res = sohoa("info", cwd=tmp_path, env=env)
    assert res.returncode == 0
    assert res.stderr.count(str(tmp_path / "sohoa-data")) >= 1 and res.stderr.count("Chú ý") == 1
    assert "SOHOA_DATA_DIR" in res.stderr and "no longer used" in res.stderr
    # Pointing SOHOA_DATA_DIR at it is using it on purpose: no warning then.
    quiet = sohoa("info", cwd=tmp_path, env=env | {"SOHOA_DATA_DIR": str(tmp_path / "sohoa-data")})
    assert quiet.returncode == 0 and quiet.stderr == ""
