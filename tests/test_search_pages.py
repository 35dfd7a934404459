"""Search answers with the page of the stored searchable PDF, not of the scanned stack (issue 9, item 6).

A counter stack: cover sheet, its blank back, a page, a blank duplex back, another page. The case's
original keeps its own four pages (stack pages 2–5, the cover sheet is not stored); its searchable
PDF holds two (blank backs dropped). A hit on the last page of the stack (stack page 5, page 4 of
the case's original) is page 2 of the PDF, also after the catalog is rebuilt from the store.
"""
from __future__ import annotations

import subprocess

from PIL import Image

from flows.common import open_archive
from flows.desk import intake
from tests.test_desk import CASE, DPI, sheet, text_page, write_stack


def _pdf_page_text(data_dir, key: str, page: int) -> str:
    pdf = data_dir / "objects" / key
    return subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout


def test_hit_reports_the_page_of_the_searchable_pdf(prefect_harness, data_dir, tmp_path):
    cover = sheet(CASE)
    blank = Image.new("L", cover.size, 255)
    path = write_stack(tmp_path / "xap.pdf", [cover, blank, text_page("ECHO"), blank.copy(), text_page("FOXTROT")],
                       dpi=DPI)
    [report] = intake(files=[str(path)], write_check=False)
    assert report["status"] == "stored" and report["case_id"] == CASE and report["page_count"] == 2
    key = report["stored_keys"]["searchable_pdf"]
    archive = open_archive()
    for attempt in ("ingested", "reindexed"):
        [hit] = archive.catalog.search("FOXTROT")
        assert hit.page == 2, f"{attempt}: page {hit.page} of a 2-page PDF"
        assert hit.source_page == 4, f"{attempt}: page 4 of the case's original"
        assert "FOXTROT" in _pdf_page_text(data_dir, key, hit.page), "the reported page holds the match"
        [hit] = archive.catalog.search("ECHO")
        assert (hit.page, hit.source_page) == (1, 2), attempt
        assert "ECHO" in _pdf_page_text(data_dir, key, hit.page)
        archive.reindex()
