"""PDF/A-2b rules the signed e-copies rely on, checked with pikepdf (no veraPDF on this machine).

``pdfa2b_problems(path)`` returns one line per broken rule, each with its ISO 19005-2:2011 clause;
an empty list means every rule below holds. It checks the rules a signing step or an incremental
update can break, not the whole standard (colour spaces, transparency and the rest are set once by
pipeline/pdf.py when it writes the file and are untouched by signing):

- 6.1.2  the header is ``%PDF-1.n`` (n ≤ 7) with a binary comment; the catalog's /Version, when
         present, is not above 1.7 (PDF/A-2 is built on ISO 32000-1, PDF 1.7)
- 6.1.3  the trailer has an /ID; there is no /Encrypt
- 6.1.7.1 no stream has /F, /FFilter or /FDecodeParms (external streams)
- 6.2.3  an /OutputIntents entry with /S /GTS_PDFA1 and an embedded ICC /DestOutputProfile
- 6.2.11.4.1 every font used by a page or an annotation's appearance is embedded
- 6.3.1  no annotation of a forbidden type (3D, Sound, Movie, Screen, FileAttachment …)
- 6.3.2  every annotation has the Print flag set and Hidden, Invisible, NoView, ToggleNoView unset
- 6.3.3  every annotation with a non-empty /Rect has an /AP whose only entry is /N
- 6.4.1  the AcroForm does not set /NeedAppearances true
- 6.5.1  no JavaScript, Launch, Sound, Movie, ResetForm, ImportData, Hide, SetOCGState, Rendition,
         Trans, GoTo3DView action; 6.5.2 no /AA in the catalog or a page
- 6.6.2.1 the catalog has a /Metadata stream of /Type /Metadata, /Subtype /XML
- 6.6.3  DocInfo entries that have an XMP equivalent hold the same values (Title, Author, Subject,
         Keywords, Creator, Producer, CreationDate, ModDate)
- 6.6.4  the XMP declares ``pdfaid:part`` 2 and ``pdfaid:conformance`` B
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pikepdf

FORBIDDEN_ANNOTS = {"/3D", "/Sound", "/Movie", "/Screen", "/FileAttachment", "/RichMedia"}
FORBIDDEN_ACTIONS = {"/JavaScript", "/Launch", "/Sound", "/Movie", "/ResetForm", "/ImportData", "/Hide",
                     "/SetOCGState", "/Rendition", "/Trans", "/GoTo3DView"}
# Annotation flags (ISO 32000-1, 12.5.3): bit 1 Invisible, 2 Hidden, 3 Print, 6 NoView, 9 ToggleNoView.
INVISIBLE, HIDDEN, PRINT, NOVIEW, TOGGLENOVIEW = 1, 2, 4, 32, 256
INFO_TO_XMP = {"/Title": "dc:title", "/Author": "dc:creator", "/Subject": "dc:description",
               "/Keywords": "pdf:Keywords", "/Creator": "xmp:CreatorTool", "/Producer": "pdf:Producer",
               "/CreationDate": "xmp:CreateDate", "/ModDate": "xmp:ModifyDate"}


def _pdf_date(text: str) -> dt.datetime | None:
    m = re.match(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Z+-])?(\d{2})?'?(\d{2})?", text)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(v) if v else default for v, default in zip(m.groups()[:6], (0, 1, 1, 0, 0, 0)))
    sign, th, tm = m.group(7), int(m.group(8) or 0), int(m.group(9) or 0)
    tz = dt.UTC if sign in (None, "Z") else dt.timezone((1 if sign == "+" else -1) * dt.timedelta(hours=th, minutes=tm))
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=tz)


def _xmp_date(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _fonts_of(resources, seen: set, out: list[str]) -> None:
    if not isinstance(resources, pikepdf.Dictionary):
        return
    for name, font in (resources.get("/Font") or {}).items():
        if font.objgen in seen:
            continue
        seen.add(font.objgen)
        subtype = str(font.get("/Subtype"))
        if subtype == "/Type3":
            _fonts_of(font.get("/Resources"), seen, out)
            continue
        descendants = font.get("/DescendantFonts") if subtype == "/Type0" else [font]
        for f in descendants or []:
            desc = f.get("/FontDescriptor")
            if desc is None or not any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                out.append(f"6.2.11.4.1: font {name} ({f.get('/BaseFont')}) is not embedded")
    for xobj in (resources.get("/XObject") or {}).values():
        if xobj.objgen not in seen and str(xobj.get("/Subtype")) == "/Form":
            seen.add(xobj.objgen)
            _fonts_of(xobj.get("/Resources"), seen, out)


def pdfa2b_problems(path: Path) -> list[str]:
    """The PDF/A-2b rules above that ``path`` breaks (empty: all hold)."""
    problems: list[str] = []
    head = Path(path).read_bytes()[:64]
    m = re.match(rb"%PDF-1\.([0-7])\r?\n%([\x80-\xff]{4})", head)
    if not m:
        problems.append(f"6.1.2: the header is not %PDF-1.n (n ≤ 7) with a binary comment: {head[:20]!r}")
    with pikepdf.open(path) as pdf:
        root = pdf.Root
        if "/Version" in root and str(root.Version).lstrip("/") > "1.7":
            problems.append(f"6.1.2: the catalog declares /Version {root.Version} (PDF/A-2 is PDF 1.7)")
        if "/ID" not in pdf.trailer:
            problems.append("6.1.3: the trailer has no /ID")
        if "/Encrypt" in pdf.trailer:
            problems.append("6.1.3: the file is encrypted")
        for obj in pdf.objects:
            external = ("/F", "/FFilter", "/FDecodeParms")
            if isinstance(obj, pikepdf.Stream) and any(k in obj.stream_dict for k in external):
                problems.append(f"6.1.7.1: stream {obj.objgen} refers to an external file")
        intents = [i for i in root.get("/OutputIntents", []) if str(i.get("/S")) == "/GTS_PDFA1"]
        if not intents or not isinstance(intents[0].get("/DestOutputProfile"), pikepdf.Stream):
            problems.append("6.2.3: no GTS_PDFA1 output intent with an embedded ICC profile")
        if "/AA" in root:
            problems.append("6.5.2: the catalog has additional actions (/AA)")
        form = root.get("/AcroForm")
        if form is not None and bool(form.get("/NeedAppearances", False)):
            problems.append("6.4.1: the AcroForm sets /NeedAppearances true")
        fonts: list[str] = []
        seen: set = set()
        for n, page in enumerate(pdf.pages, 1):
            if "/AA" in page.obj:
                problems.append(f"6.5.2: page {n} has additional actions (/AA)")
            _fonts_of(page.obj.get("/Resources"), seen, fonts)
            for annot in page.obj.get("/Annots", []):
                subtype = str(annot.get("/Subtype"))
                if subtype in FORBIDDEN_ANNOTS:
                    problems.append(f"6.3.1: page {n} has a {subtype} annotation")
                flags = int(annot.get("/F", 0))
                if not flags & PRINT or flags & (INVISIBLE | HIDDEN | NOVIEW | TOGGLENOVIEW):
                    problems.append(f"6.3.2: a {subtype} annotation on page {n} has flags {flags}")
                rect = [float(v) for v in annot.get("/Rect", [0, 0, 0, 0])]
                if subtype != "/Popup" and rect[2] > rect[0] and rect[3] > rect[1]:
                    ap = annot.get("/AP")
                    if ap is None or set(ap.keys()) != {"/N"}:
                        problems.append(f"6.3.3: a {subtype} annotation on page {n} has no /AP with only /N")
                    elif isinstance(ap.N, pikepdf.Stream):
                        _fonts_of(ap.N.get("/Resources"), seen, fonts)
                action = annot.get("/A")
                if action is not None and str(action.get("/S")) in FORBIDDEN_ACTIONS:
                    problems.append(f"6.5.1: a {action.get('/S')} action on page {n}")
        problems += fonts
        names = root.get("/Names")
        if names is not None and "/JavaScript" in names:
            problems.append("6.5.1: the document has JavaScript")
        open_action = root.get("/OpenAction")
        if isinstance(open_action, pikepdf.Dictionary) and str(open_action.get("/S")) in FORBIDDEN_ACTIONS:
            problems.append(f"6.5.1: the open action is {open_action.get('/S')}")
        meta_stream = root.get("/Metadata")
        if not isinstance(meta_stream, pikepdf.Stream) or str(meta_stream.get("/Type")) != "/Metadata" \
                or str(meta_stream.get("/Subtype")) != "/XML":
            problems.append("6.6.2.1: the catalog has no /Metadata stream of /Type /Metadata /Subtype /XML")
            return problems
        meta = pdf.open_metadata()
        if meta.get("pdfaid:part") != "2" or meta.get("pdfaid:conformance") != "B":
            problems.append(f"6.6.4: XMP says part {meta.get('pdfaid:part')!r}, "
                            f"conformance {meta.get('pdfaid:conformance')!r}, not 2 / B")
        info = pdf.trailer.get("/Info")
        for key, prop in INFO_TO_XMP.items():
            if info is None or key not in info:
                continue
            value, xmp = str(info[key]), meta.get(prop)
            if key.endswith("Date"):
                same = xmp is not None and _pdf_date(value) == _xmp_date(str(xmp))
            else:
                xmp_text = xmp if isinstance(xmp, str) else (", ".join(xmp) if isinstance(xmp, list | set) else None)
                same = xmp_text == value
            if not same:
                problems.append(f"6.6.3: DocInfo {key} {value!r} differs from XMP {prop} {xmp!r}")
    return problems
