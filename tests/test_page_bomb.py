"""Issue 21 item 2: a small PDF whose page is huge in points is refused before anything is rendered."""
from __future__ import annotations

from pathlib import Path

import pikepdf
import pytest
from pikepdf import Dictionary, Name

from models import ImageTooLarge
from tests.hostile_corpus import png_announcing
from tests.test_hostile import run_cli


def big_text_pdf(path: Path, side_pt: float = 3000) -> Path:
    """One page of side_pt × side_pt points carrying one line of real text (~1 KB)."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(side_pt, side_pt))
    font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica))
    page.obj.Resources = Dictionary(Font=Dictionary(F1=font))
    line = f"BT /F1 24 Tf 100 {side_pt - 100:g} Td (Quyet dinh ve viec tiep nhan ho so dat dai) Tj ET"
    page.obj.Contents = pdf.make_stream(line.encode())
    pdf.save(path)
    return path


@pytest.fixture
def no_render(monkeypatch) -> list[tuple]:
    """Record (and refuse) every call to the rasteriser."""
    import pdf2image

    calls: list[tuple] = []

    def refuse(*args, **kwargs):
        calls.append((args, kwargs))
        raise AssertionError("the page was rendered")

    monkeypatch.setattr(pdf2image, "convert_from_path", refuse)
    return calls


def test_huge_text_page_is_refused_before_rendering(tmp_path: Path, no_render: list[tuple]) -> None:
    from pipeline.reader import read_pages

    src = big_text_pdf(tmp_path / "big.pdf")
    assert src.stat().st_size < 4096
    with pytest.raises(ImageTooLarge) as err:
        list(read_pages(src, tmp_path / "w"))
    assert no_render == []
    assert "12500×12500" in err.value.message_vi and err.value.message_vi.count(".") <= 2


def test_desk_assembly_never_renders_a_huge_text_page(tmp_path: Path, no_render: list[tuple]) -> None:
    """The desk assembles replaced pages into one TIFF, rendering text pages at 300 dpi: refused first."""
    from pipeline.reader import assemble_pages

    src = big_text_pdf(tmp_path / "big.pdf")
    with pytest.raises(ImageTooLarge):
        assemble_pages([(src, 1)], tmp_path / "out.tif", tmp_path / "w")
    assert no_render == []
    assert not (tmp_path / "out.tif").exists()


def test_sohoa_pdf_refuses_a_huge_text_page_with_one_sentence(tmp_path: Path) -> None:
    src = big_text_pdf(tmp_path / "big.pdf")
    run = run_cli("pdf big", ["pdf", str(src), "-o", "out.pdf"], tmp_path)
    assert run.code == 3, run.output
    assert "Traceback" not in run.output
    assert "SOHOA_MAX_PIXELS" in run.output
    assert not (tmp_path / "out.pdf").exists()


def test_a_normal_text_page_is_still_copied(tmp_path: Path) -> None:
    src = big_text_pdf(tmp_path / "a4.pdf", side_pt=842)
    run = run_cli("pdf a4", ["pdf", str(src), "-o", "out.pdf"], tmp_path)
    assert run.code == 0, run.output
    with pikepdf.open(tmp_path / "out.pdf") as pdf:
        assert [float(v) for v in pdf.pages[0].mediabox] == [0, 0, 842, 842]


def test_pillow_bomb_guard_stays_on(tmp_path: Path) -> None:
    """Pillow's own guard is not switched off; a header announcing 40 GP gets the page-limit sentence."""
    from PIL import Image

    from pipeline.reader import read_pages

    assert Image.MAX_IMAGE_PIXELS is not None
    (tmp_path / "huge.png").write_bytes(png_announcing(200_000, 200_000))
    with pytest.raises(ImageTooLarge) as err:
        list(read_pages(tmp_path / "huge.png", tmp_path / "w"))
    assert "200000×200000" in err.value.message_vi
    assert Image.MAX_IMAGE_PIXELS is not None
