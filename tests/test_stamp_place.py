"""The visible signatures sit on free paper of page 1 (pipeline/stamp_place.py), and every signed or
LTV-extended file stays PDF/A-2b (tests/pdfa_rules.py), on pages with tight margins, a heading at
the top edge, a phone photo and the demo page."""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw

from pipeline import keyring, sign, stamp_place
from pipeline.sample import SAMPLE_PAGES, _font, degrade
from tests.pdfa_rules import pdfa2b_problems
from tests.pki import AGENCY, OPERATOR, test_pki  # noqa: F401 - the session fixture

CASE = "000.00.01.H56-181010-0001"
RESULT_CODE = "000.00.01.H56-181010-0001-KQ36F688361B"
DPI = 300
RENDER_DPI = 144  # 2 px a point: the band (whole points) shifts the scan by whole pixels
INK = 160  # a rendered grey darker than this is ink of the scan
# Renders to look at (git-ignored); bench/signing/figures/stamp-tight-*.png are copies of one run's.
FIGURES = Path(__file__).resolve().parent / "artifacts"


def _page(top_in: float, side_in: float, *, rule: bool = False) -> Image.Image:
    """A4 text from ``top_in`` inches below the top edge and ``side_in`` from the sides."""
    w, h = int(8.27 * DPI), int(11.69 * DPI)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    size = int(13 * DPI / 72)
    y = int(top_in * DPI)
    if rule:  # a form's frame: a line right across the top of the sheet
        draw.rectangle((int(side_in * DPI), y, w - int(side_in * DPI), y + 6), fill=0)
        y += 20
    for i, line in enumerate(SAMPLE_PAGES[0] * 2):
        draw.text((int(side_in * DPI), y), line, font=_font(i == 0, size), fill=0)
        y += int(size * 1.5)
    return img


def _photo(page: Image.Image) -> np.ndarray:
    """The page photographed on a dark desk, at an angle (as tests/test_ocr_accuracy.py does)."""
    small = np.asarray(page.resize((827, 1169)), dtype=np.float32)
    corners = np.float32([[130, 90], [960, 140], [1000, 1300], [95, 1250]])
    m = cv2.getPerspectiveTransform(np.float32([[0, 0], [827, 0], [827, 1169], [0, 1169]]), corners)
    out = cv2.warpPerspective(small, m, (1100, 1400), borderValue=70.0)
    out = out * (1.0 - 0.3 * np.linspace(0, 1, 1100, dtype=np.float32)[None, :])
    return np.clip(cv2.GaussianBlur(out, (3, 3), 0.7), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pages(tmp_path_factory, sample_dossier) -> dict[str, Path]:
    """Searchable PDFs made by the pipeline (one Tesseract call each) from four kinds of page 1."""
    from pipeline.document import process_document

    work = tmp_path_factory.mktemp("stamp-pages")
    images = {
        "tight": degrade(_page(0.2, 0.15), seed=3),  # heading 5 mm from the top, 4 mm from the sides
        "top-edge": degrade(_page(0.02, 0.1, rule=True), seed=4),  # a frame line at the very top edge
        "phone": Image.fromarray(_photo(_page(0.25, 0.2))),
    }
    out = {}
    for name, img in images.items():
        src = work / f"{name}.png"
        img.save(src, dpi=(DPI, DPI) if name != "phone" else (72, 72))
        out[name] = src
    out["demo"] = sample_dossier[1]
    pdfs = {}
    for name, src in out.items():
        pdfs[name] = work / f"{name}.pdf"
        process_document([src], workdir=work / f"w-{name}", out_pdf=pdfs[name], case_id=CASE, jobs=1)
    return pdfs


@pytest.fixture(scope="module")
def test_keys(tmp_path_factory) -> keyring.SigningConfig:
    return keyring.init_test_keys(tmp_path_factory.mktemp("keys"), operator="demo")


def _render(path: Path) -> np.ndarray:
    png = subprocess.run(["pdftoppm", "-r", str(RENDER_DPI), "-f", "1", "-l", "1", "-gray", "-png", str(path)],
                         capture_output=True, check=True).stdout
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def _stamp_boxes(path: Path) -> tuple[dict[str, tuple[int, int, int, int]], float]:
    """Each signature widget's rectangle as pixel rows/columns of the render, and the page's height (pt)."""
    with pikepdf.open(path) as pdf:
        page = pdf.pages[0]
        x0, _, _, y1 = (float(v) for v in page.MediaBox)
        height = float(page.MediaBox[3]) - float(page.MediaBox[1])
        scale = RENDER_DPI / 72
        boxes = {}
        for annot in page.obj.get("/Annots", []):
            if str(annot.get("/FT")) == "/Sig" or "/Parent" in annot and str(annot.Parent.get("/FT")) == "/Sig":
                r = [float(v) for v in annot.Rect]
                name = str(annot.get("/T") or annot.Parent.T)
                boxes[name] = (int((r[0] - x0) * scale), int((y1 - r[3]) * scale),
                               int(np.ceil((r[2] - x0) * scale)), int(np.ceil((y1 - r[1]) * scale)))
    return boxes, height


def assert_no_stamp_over_ink(unsigned: Path, signed: Path) -> dict:
    """No inked pixel of the scan lies under a stamp; each stamp drew its text; returns what was seen."""
    before, after = _render(unsigned), _render(signed)
    band = after.shape[0] - before.shape[0]  # rows of the white band added above the scan
    assert band >= 0 and after.shape[1] == before.shape[1]
    # The scan is where it was, at 100 % scale: below the band the page is the same except for stamps.
    below = after[band:].astype(int)
    boxes, _ = _stamp_boxes(signed)
    assert set(boxes) >= {sign.AGENCY_FIELD}
    untouched = np.ones(before.shape, bool)
    for name, (c0, r0, c1, r1) in boxes.items():
        scan_rows = slice(max(r0 - band, 0), max(r1 - band, 0))
        under = before[scan_rows, c0:c1]
        assert (under < INK).sum() == 0, f"{name}: {(under < INK).sum()} inked pixels of the scan under the stamp"
        assert (after[r0:r1, c0:c1] < INK).sum() > 30, f"{name}: the stamp drew nothing"
        untouched[scan_rows, c0:c1] = False
    assert (np.abs(below - before.astype(int))[untouched] > 40).mean() < 0.001
    return {"band_px": band, "boxes": boxes}


def _sign(pdf: Path, tmp_path: Path, config: keyring.SigningConfig, operator: str | None = "demo") -> Path:
    target = tmp_path / f"{pdf.stem}-signed.pdf"
    shutil.copy(pdf, target)
    infos = sign.sign_pdf(target, config=config, operator=operator, result_code=RESULT_CODE)
    assert [i.role for i in infos] == (["operator", "agency"] if operator else ["agency"])
    return target


@pytest.mark.parametrize("kind", ["tight", "top-edge", "phone"])
def test_stamps_never_cover_the_scan(pages, test_keys, tmp_path, kind):
    unsigned = pages[kind]
    # The old fixed boxes (top 68 pt of each corner) would have covered ink on all three pages.
    head = _render(unsigned)[: int(68 * RENDER_DPI / 72)]
    assert (head < INK).sum() > 200
    signed = _sign(unsigned, tmp_path, test_keys)
    seen = assert_no_stamp_over_ink(unsigned, signed)
    assert set(seen["boxes"]) == {sign.OPERATOR_FIELD, sign.AGENCY_FIELD}
    assert pdfa2b_problems(signed) == []
    if kind == "tight":
        FIGURES.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_render(unsigned)).save(FIGURES / "stamp-tight-before.png")
        Image.fromarray(_render(signed)).save(FIGURES / "stamp-tight-after.png")
    if kind == "top-edge":  # no free paper at all at the top: both stamps go into a band above the scan
        assert seen["band_px"] > 0
        with pikepdf.open(signed) as pdf, pikepdf.open(unsigned) as orig:
            assert float(pdf.pages[0].MediaBox[3]) > float(orig.pages[0].MediaBox[3])
            assert [float(v) for v in pdf.pages[0].MediaBox[:3]] == [float(v) for v in orig.pages[0].MediaBox[:3]]


def test_the_demo_page_keeps_its_stamps_in_the_margin_at_10_pt(pages, test_keys, tmp_path):
    signed = _sign(pages["demo"], tmp_path, test_keys)
    seen = assert_no_stamp_over_ink(pages["demo"], signed)
    assert seen["band_px"] == 0
    # With real keys (no TEST line) both stamps fit the demo page's margin at the decree's 10 pt.
    texts = {"agency": stamp_place.agency_text(AGENCY, sign.dt.datetime.now(sign.VIETNAM), RESULT_CODE, test=False),
             "operator": stamp_place.operator_text(OPERATOR, sign.dt.datetime.now(sign.VIETNAM), test=False)}
    with pikepdf.open(pages["demo"]) as pdf:
        box = tuple(float(v) for v in pdf.pages[0].MediaBox)
    plan = stamp_place.plan_stamps(pages["demo"], texts, media_box=box)
    assert plan.band == 0 and {p.font_size for p in plan.stamps.values()} == {10}
    # Top right for the agency, top left for the operator (Decree 30/2020; Circular 01/2023).
    assert plan.stamps["agency"].box[0] > box[2] / 2 > plan.stamps["operator"].box[2]


def test_operator_signing_later_finds_the_room_kept_for_it(pages, test_keys, tmp_path):
    # The agency signs first (the operator had no key yet); the operator's place is kept on free paper,
    # and the operator's later signature lands there without touching the scan or the page size.
    target = _sign(pages["tight"], tmp_path, test_keys, operator=None)
    no_key = keyring.SigningConfig(**{**test_keys.__dict__, "operators": {}})
    shutil.copy(pages["tight"], target)
    infos = sign.sign_pdf(target, config=no_key, operator="demo", result_code=RESULT_CODE)
    assert [i.role for i in infos] == ["agency"]
    with pikepdf.open(target) as pdf:
        size = [float(v) for v in pdf.pages[0].MediaBox]
    later = sign.sign_pdf(target, config=test_keys, operator="demo", result_code=RESULT_CODE, with_agency=False)
    assert [i.role for i in later] == ["operator"]
    with pikepdf.open(target) as pdf:
        assert [float(v) for v in pdf.pages[0].MediaBox] == size
    assert_no_stamp_over_ink(pages["tight"], target)
    assert [c.problems for c in sign.verify_pdf(target, trust_roots=test_keys.trust_roots)] == [[], []]
    assert pdfa2b_problems(target) == []


def test_b_lt_signatures_and_their_dss_update_stay_pdfa(pages, test_pki, tmp_path):  # noqa: F811
    config = keyring.load_signing_config(test_pki.keys_dir, env={})
    target = tmp_path / "blt.pdf"
    shutil.copy(pages["demo"], target)
    infos = sign.sign_pdf(target, config=config, operator=OPERATOR, result_code=RESULT_CODE)
    assert [(i.role, i.level) for i in infos] == [("operator", "PAdES-B-LT"), ("agency", "PAdES-B-LT")]
    with pikepdf.open(target) as pdf:
        assert "/DSS" in pdf.Root and "/Version" not in pdf.Root
    assert pdfa2b_problems(target) == []
    assert b"/Version /2.0" not in target.read_bytes()


def test_a_file_raised_to_pdf_2_by_an_older_release_is_set_back_to_1_7(pages, test_keys, tmp_path):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    old = tmp_path / "old.pdf"
    with open(pages["demo"], "rb") as f:
        w = IncrementalPdfFileWriter(f)
        w.ensure_output_version((2, 0))
        with open(old, "wb") as out:
            w.write(out)
    assert any("6.1.2" in p for p in pdfa2b_problems(old))
    sign.sign_pdf(old, config=test_keys, operator="demo", result_code=RESULT_CODE)
    assert pdfa2b_problems(old) == []


def test_the_checker_catches_what_it_names(pages, tmp_path):
    # Each rule can fail: a PDF 2.0 catalog, an unembedded font, DocInfo out of step with the XMP.
    with pikepdf.open(pages["demo"]) as pdf:
        pdf.Root.Version = pikepdf.Name("/2.0")
        pdf.docinfo["/Producer"] = "something else"
        font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                    BaseFont=pikepdf.Name.Helvetica))
        pdf.pages[0].Resources.Font = pikepdf.Dictionary(F9=font)
        pdf.save(tmp_path / "bad.pdf")
    problems = pdfa2b_problems(tmp_path / "bad.pdf")
    assert {p.split(":")[0] for p in problems} == {"6.1.2", "6.2.11.4.1", "6.6.3"}, problems


def test_a_page_that_may_not_grow_takes_the_least_inked_spot_at_6_pt():
    # Once a file is signed its page 1 may not change: a stamp that finds no free paper takes the spot
    # with the least ink (here the one clear patch) at the smallest legible size, never a band.
    grey = np.full((842, 595), 40, np.uint8)  # 1 px = 1 pt: ink everywhere
    grey[20:50, 320:590] = 255  # ... but for a patch at the top right, too small even at 6 pt
    texts = {"agency": stamp_place.agency_text(AGENCY, sign.dt.datetime.now(sign.VIETNAM), RESULT_CODE, test=False)}
    plan = stamp_place.plan_stamps(b"", texts, media_box=(0, 0, 595, 842), may_extend=False, grey=grey)
    [agency] = plan.stamps.values()
    assert plan.band == 0 and agency.font_size == stamp_place.MIN_FONT_SIZE and not agency.in_band
    x0, y0, x1, y1 = agency.box
    assert 320 <= x0 and x1 <= 590 and 842 - y1 >= 6 and 842 - y1 <= 25  # over the clear patch, not the ink
    grown = stamp_place.plan_stamps(b"", texts, media_box=(0, 0, 595, 842), grey=grey)
    assert grown.band > 0 and grown.stamps["agency"].in_band and grown.media_box[3] == 842 + grown.band
