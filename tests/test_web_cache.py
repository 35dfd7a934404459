"""The web app's download cache stays bounded: least recently used first, never what was just served."""
from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

from storage import cache
from tests.web_fixtures import CASE_A, signed_in
from web.app import prune_cache

MB = 1 << 20


def _file(path: Path, size: int, age: float, now: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (now - age, now - age))
    return path


def test_prune_removes_least_recently_used_down_to_the_low_water_mark(tmp_path):
    now = time.time()
    old = [_file(tmp_path / "objects" / "aa" / f"old{i}", MB, 7200 + i, now) for i in range(6)]
    recent = _file(tmp_path / "pages" / "bb" / "recent.png", MB, 3600, now)
    just_served = _file(tmp_path / "merged" / "served.pdf", MB, 5, now)
    report = cache.prune(tmp_path, max_bytes=5 * MB, now=now)  # 8 MB in the folder, 4 MB is the low water
    assert report.bytes_before == 8 * MB and report.bytes_after <= 4 * MB
    assert report.removed == 4
    assert all(not p.exists() for p in old[2:]) and all(p.exists() for p in old[:2])  # oldest went first
    assert recent.exists() and just_served.exists()


def test_prune_keeps_what_was_used_within_the_grace_even_over_the_limit(tmp_path):
    now = time.time()
    files = [_file(tmp_path / f"f{i}", MB, 60, now) for i in range(4)]
    report = cache.prune(tmp_path, max_bytes=MB, grace=600, now=now)
    assert report.removed == 0 and all(p.exists() for p in files)


def test_prune_under_the_limit_removes_nothing_but_crash_leftovers(tmp_path):
    now = time.time()
    kept = _file(tmp_path / "objects" / "cc" / "doc", MB, 99_999, now)
    stale_part = _file(tmp_path / "objects" / "cc" / "doc2.part", MB, 7200, now)
    fresh_part = _file(tmp_path / "objects" / "cc" / "doc3.part", MB, 10, now)  # a download under way
    build = tmp_path / "merged" / ".build-x1"
    _file(build / "case.pdf", 10, 7200, now)
    os.utime(build, (now - 7200, now - 7200))
    report = cache.prune(tmp_path, max_bytes=100 * MB, now=now)
    assert kept.exists() and fresh_part.exists() and not stale_part.exists() and not build.exists()
    assert report.removed == 0 and report.leftovers_removed == 2


def test_touch_makes_a_file_recent_again(tmp_path):
    now = time.time()
    a = _file(tmp_path / "a", MB, 9000, now)
    b = _file(tmp_path / "b", MB, 8000, now)
    cache.touch(a)  # a was just served again: b is now the least recently used
    cache.prune(tmp_path, max_bytes=int(1.5 * MB), grace=0)
    assert a.exists() and not b.exists()
    cache.touch(tmp_path / "gone")  # no error for a file another replica pruned


def test_the_apps_prune_reads_its_limit_from_the_settings(tmp_path):
    now = time.time()
    for i in range(3):
        _file(tmp_path / f"f{i}", MB, 7200 + i, now)
    services = SimpleNamespace(cache_dir=tmp_path, web=SimpleNamespace(cache_max_bytes=2 * MB))
    report = prune_cache(services)  # type: ignore[arg-type]
    assert report is not None and report.removed == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["f0"]


def test_a_running_server_serves_again_after_its_cache_was_emptied(web_server, web_data):
    """Pruning under a live ``sohoa serve`` costs a re-fetch, never a failed download or thumbnail."""
    cache_dir = Path(web_data["SOHOA_DATA_DIR"]) / "web-cache"
    with signed_in(web_server.url, "lan") as lan:
        doc = lan.get(f"/api/v1/cases/{CASE_A}").json()["documents"][0]["document_id"]
        pdf_url = f"/api/v1/cases/{CASE_A}/documents/{doc}/searchable.pdf"
        first = lan.get(pdf_url)
        thumb = lan.get(f"/cases/{CASE_A}/documents/{doc}/pages/1.png", params={"w": 120})
        assert first.status_code == 200 and thumb.status_code == 200
        cached = [p for p in cache_dir.rglob("*") if p.is_file()]
        assert cached, "the server cached nothing under its web-cache folder"
        report = cache.prune(cache_dir, max_bytes=1, grace=0)
        assert report.removed == len(cached) and not [p for p in cache_dir.rglob("*") if p.is_file()]
        again = lan.get(pdf_url)
        assert again.status_code == 200 and again.content == first.content
        assert lan.get(f"/cases/{CASE_A}/documents/{doc}/pages/1.png", params={"w": 120}).content == thumb.content


def test_requests_filling_one_cache_entry_at_once_all_get_it(tmp_path):
    """A document page's thumbnails all fetch its PDF into the cache at once. Each writer fills a
    file of its own and renames it into place: none fails because another renamed a shared
    ``.part`` from under it (the CI flake of a browser test: a thumbnail answered 500)."""
    import threading

    from storage import dossiers
    from storage.local import LocalStore

    store = LocalStore(tmp_path / "objects")
    source = tmp_path / "doc.pdf"
    source.write_bytes(b"%PDF-1.7\n" + os.urandom(200_000))
    key = "cases/000.00.01.H56-181010-0001/doc.pdf"
    store.put_file(key, source, metadata={}, content_type="application/pdf")
    writers = 4
    all_written = threading.Barrier(writers, timeout=60)  # a guard against hanging, not a timing
    real_get = store.get_file

    def get_then_wait(k, dest):  # every writer has its bytes down before any renames them
        out = real_get(k, dest)
        all_written.wait()
        return out

    store.get_file = get_then_wait
    results, errors = [], []

    def fetch() -> None:
        try:
            results.append(dossiers.local_copy(store, key, tmp_path / "cache"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == writers
    path = results[0][0]
    assert path.read_bytes() == source.read_bytes()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no .part left behind
