"""The bench's form generator (bench/forms/make_forms.py): pages, truths and manifest agree, and the
truth follows the form's rules (ID one word after its label, no leader dots). Needs no ../shared."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from PIL import Image

GENERATOR = Path(__file__).resolve().parents[1] / "bench" / "forms" / "make_forms.py"


def _generator():
    spec = importlib.util.spec_from_file_location("make_forms", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_form_page_matches_its_manifest(tmp_path):
    make_forms = _generator()
    for out in (tmp_path / "a", tmp_path / "b"):
        assert make_forms.main([str(out), "--pages", "1", "--dpi", "72", "--seed", "5"]) == 0
    header, *rows = (tmp_path / "a" / "manifest.tsv").read_text("utf-8").splitlines()
    assert header.split("\t")[:2] == ["page", "truth"] and len(rows) == 1
    page, truth, *_ = rows[0].split("\t")
    image = Image.open(tmp_path / "a" / page)
    assert image.size == (int(8.27 * 72), int(11.69 * 72)) and round(image.info["dpi"][0]) == 72
    text = (tmp_path / "a" / truth).read_text("utf-8")
    assert text == (tmp_path / "b" / truth).read_text("utf-8")  # the same seed, the same page
    lines = text.splitlines()
    assert any(line.startswith(("TỜ KHAI", "ĐƠN ĐỀ NGHỊ")) for line in lines)
    assert re.search(r"^Số định danh cá nhân: \d{12}$", text, re.M)  # the comb boxes' ID: one word
    assert "NGƯỜI KHAI" in lines and "(Ký, ghi rõ họ tên)" in lines
    assert "..." not in text  # leaders are not text
