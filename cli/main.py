"""The ``sohoa`` command: one sub-command per thing a counter operator, case handler or archivist does.

Every error a user can cause ends in one plain sentence and a documented exit code (see
models/errors.py and README.md), never a traceback.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.options import CASE_HELP, Json, case_arg, option
from cli.output import log_file, print_json
from cli.usage import usage_error, vietnamese_help
from models import SohoaError
from pipeline.limits import printable

__all__ = ["CASE_HELP", "case_arg", "main", "build_app"]

# Modules that add their own sub-commands with ``register(app)``, in the order of ``sohoa --help``: the
# commands on documents (demo, scan, pdf, check, show, get), the case handlers'
# (search, link, verify, reindex), the scanning desk (watch, coversheet), the archivists (backfill, worker),
# the web administrator (serve, user, token, audit) and signing (keys, sign).
EXTENSIONS = ("cli.documents", "cli.storage", "cli.desk", "cli.backfill", "cli.web_admin", "cli.sign",
              "cli.retention", "cli.archive", "cli.webhook")


# Commands that run Prefect flows: their Prefect log lines go to the log file unless --verbose.
PREFECT_COMMANDS = {"demo", "scan", "backfill", "watch", "worker", "retry", "repair-stacks", "verify"}


def _quiet_prefect(verbose: bool, command: str | None = None) -> None:
    """Keep Prefect's log lines (and its first-run usage-data notice) off the operator's screen.

    Without --verbose, Prefect logs to ``<data dir>/logs/sohoa.log`` (tracebacks included) instead of
    the terminal. Usage data is not sent (server analytics off, DO_NOT_TRACK=1 unless set), so its
    notice never shows: dossiers of public administration stay on machines the agency chose.
    """
    # A fresh PREFECT_HOME migrates its database on the first start: give the temporary server
    # time for that instead of failing the first scan (Prefect's default is 20 s).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if verbose:
        return
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    ours = os.environ.get("PREFECT_LOGGING_SETTINGS_PATH", "").endswith("/logs/prefect-logging.yml")
    if command in PREFECT_COMMANDS and ("PREFECT_LOGGING_SETTINGS_PATH" not in os.environ or ours):
        try:
            os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(_prefect_logging_to_file())
        except (OSError, ImportError, ValueError):
            pass  # no writable data dir yet: Prefect logs to the screen as usual


def _prefect_logging_to_file() -> Path:
    """Prefect's own logging.yml with its console handlers replaced by a file under the data dir."""
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("prefect")
    default = Path(list(spec.submodule_search_locations)[0]) / "logging" / "logging.yml"
    config = yaml.safe_load(default.read_text(encoding="utf-8"))
    target = log_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    for name, formatter in (("console", "standard"), ("debug", "debug")):
        config["handlers"][name] = {"level": 0, "class": "logging.FileHandler", "formatter": formatter,
                                    "filename": str(target), "encoding": "utf-8"}
    path = target.with_name("prefect-logging.yml")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def cmd_info(as_json: Json = False) -> int:
    """Where the data, store, catalog and Prefect API are, and the versions in use (no secrets)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from pipeline.document import software_version
    from pipeline.ocr import engine_version
    from storage.config import Settings, data_dir_source, prefect_api

    config = Settings.from_env()
    info: dict[str, Any] = config.describe() | {
        "data_dir_from": data_dir_source(), "data_dir_exists": config.data_dir.is_dir(),
        "prefect_api": prefect_api(),
    }
    versions = {"sohoa": software_version(), "python": platform.python_version(), "tesseract": engine_version()}
    for package in ("prefect", "pikepdf", "opencv-python-headless", "sqlalchemy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    info["versions"] = versions
    if as_json:
        print_json(info)
        return 0
    where = "SOHOA_DATA_DIR" if info["data_dir_from"] == "SOHOA_DATA_DIR" else "mặc định/default"
    print(f"Thư mục dữ liệu (data dir): {info['data_dir']} ({where}"
          f"{'' if info['data_dir_exists'] else ', chưa tạo/not created yet'})")
    print(f"Kho lưu trữ (store):        {info['store']}")
    print(f"Danh mục (catalog):         {info['catalog']}")
    print(f"Prefect API:                {info['prefect_api']}")
    print("Phiên bản (versions):       " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return 0


def _data_dir_epilog() -> str:
    from rich.markup import escape

    from storage.config import Settings, data_dir_source

    where = "từ/from SOHOA_DATA_DIR" if data_dir_source() == "SOHOA_DATA_DIR" else \
        "mặc định cho mỗi người dùng; đặt SOHOA_DATA_DIR để dùng thư mục khác (the per-user default; set " \
        "SOHOA_DATA_DIR to use another folder)"
    # The path on a line of its own: a long one is never cut by the help's line wrapping.
    return (f"Thư mục dữ liệu (data directory):\n\n{escape(str(Settings.from_env().data_dir))}\n\n({where}). "
            "'sohoa info' cho biết kho, danh mục và Prefect API đang dùng (shows the store, catalog and Prefect API "
            "in use). 'sohoa LỆNH --help': cách dùng từng lệnh (each command's options).")


def warn_legacy_data_dir() -> None:
    """Say once (per command) that an old ./sohoa-data in this folder is no longer used."""
    from storage.config import Settings, legacy_data_dir

    old = legacy_data_dir()
    if old is None:
        return
    now = Settings.from_env().data_dir
    print(f"Chú ý: thư mục cũ {old} không còn được dùng; dữ liệu nằm ở {now}. Để dùng thư mục cũ, đặt "
          f"SOHOA_DATA_DIR={old}, hoặc chuyển nó thành {now}. (Note: the old {old} is no longer used; the data "
          f"directory is {now}. Set SOHOA_DATA_DIR={old} to keep using it, or move it to {now}.)", file=sys.stderr)


def build_app() -> typer.Typer:
    """The ``sohoa`` command: every sub-command, each option with its help text."""
    app = typer.Typer(name="sohoa", help="Số hóa hồ sơ một cửa: bản quét → PDF/A tìm kiếm được "
                                         "(one-stop-shop scans → searchable PDF/A)",
                      epilog=_data_dir_epilog(), add_completion=False, rich_markup_mode="rich",
                      no_args_is_help=True, pretty_exceptions_enable=False,
                      context_settings={"help_option_names": ["-h", "--help"]})

    @app.callback()
    def root(verbose: Annotated[bool, option("--verbose", help="hiện nhật ký của Prefect trên màn hình (show "
                                                               "Prefect's logs on the screen)")] = False) -> None:
        """Số hóa hồ sơ một cửa."""  # --verbose is read from argv in main(), before Prefect is imported

    register(app)
    for module in EXTENSIONS:
        import importlib

        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(app)
    return app


def register(app: typer.Typer) -> None:
    """Add info (first in ``sohoa --help``; cli/documents.py adds demo, scan, pdf, check, show and get)."""
    app.command("info", help="nơi lưu dữ liệu, kho, danh mục, Prefect API; phiên bản, không có bí mật (where the "
                             "data, store, catalog and Prefect API are; versions; no secrets)")(cmd_info)


REAPED = {"scan", "demo", "watch", "backfill", "retry", "worker", "pdf"}
_REAPER: list[Any] = []  # keeps the watchdog's pipe open for this process's whole life


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so ``finally`` blocks remove temporary files on the way out."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a sub-command and turn every known error into a sentence and an exit code."""
    import signal
    import threading

    from typer.exceptions import Exit, TyperException  # TyperException: every usage error (missing, unknown …)

    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    if from_command_line and set(argv) & REAPED:
        # Commands that start Prefect's temporary server or Tesseract: a watchdog ends those
        # children if this process is killed (kill -9 included); see cli/reaper.py.
        from cli import reaper

        _REAPER.append(reaper.start())
    command = next((a for a in argv if not a.startswith("-")), None)
    _quiet_prefect("--verbose" in argv, command)
    sohoa = vietnamese_help(typer.main.get_command(build_app()))
    try:
        # Parsing and the command run here rather than in Typer's standalone main(), which would turn
        # Ctrl-C and SIGTERM into a bare exit code: every way out below is ours.
        with sohoa.make_context("sohoa", argv) as ctx:  # a malformed value raises our error, exit 2
            warn_legacy_data_dir()
            code = sohoa.invoke(ctx)
        return code if isinstance(code, int) else 0
    except SohoaError as exc:
        from cli.guards import sentence_for

        exc = sentence_for(command, exc)
        print(printable(exc.user_message()), file=sys.stderr)  # a file name in it is shown escaped
        return exc.exit_code
    except Exit as exc:  # --help
        return exc.exit_code
    except TyperException as exc:  # a missing argument, an unknown option, a value of the wrong type
        usage_error(exc)
        return exc.exit_code
    except Exception as exc:
        from models.errors import as_disk_full

        from cli.guards import sentence_for

        full = as_disk_full(exc)
        if full is None:
            raise
        full = sentence_for(command, full)
        print(full.user_message(), file=sys.stderr)
        return full.exit_code
    except Terminated:
        print("Đã dừng theo tín hiệu SIGTERM (terminated).", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("Đã dừng theo yêu cầu (interrupted).", file=sys.stderr)
        return 130


if __name__ == "__main__":  # python -m cli.main
    sys.exit(main())
