"""PDF/A-2b identity of an e-file: XMP metadata with our own properties, sRGB output intent, self-check."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pikepdf
from PIL import ImageCms
from pikepdf import Array, Dictionary, Name

from pipeline.pdf_read import open_pdf

SOHOA_XMP_NS = "https://sohoa.local/ns/efile/1.0/"
SOHOA_XMP_PREFIX = "sohoa"


@dataclass(frozen=True)
class PdfMetadata:
    """What the e-file says about itself: title, case, source checksum, who and what made it."""

    title: str
    case_id: str | None
    source_sha256: str
    software_version: str
    operator: str | None = None
    kind: str | None = None
    created: datetime | None = None  # UTC now when None
    result_code: str | None = None  # mã kết quả số hóa (models/result_code.py)


def set_pdfa_metadata(pdf: pikepdf.Pdf, *, metadata: PdfMetadata) -> None:
    """XMP with the PDF/A-2b identification and our own properties, mirrored in DocInfo."""
    created = metadata.created or datetime.now(timezone.utc)
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    stamp = created.isoformat(timespec="seconds")
    tool = f"sohoa {metadata.software_version}"
    own = _own_properties(metadata)
    pikepdf.models.metadata.PdfMetadata.register_xml_namespace(SOHOA_XMP_NS, SOHOA_XMP_PREFIX)
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=True) as meta:
        meta["pdfaid:part"] = "2"
        meta["pdfaid:conformance"] = "B"
        meta["dc:title"] = metadata.title
        meta["dc:format"] = "application/pdf"
        meta["xmp:CreateDate"] = stamp
        meta["xmp:ModifyDate"] = stamp
        meta["xmp:MetadataDate"] = stamp
        meta["xmp:CreatorTool"] = tool
        meta["pdf:Producer"] = f"{tool}; pikepdf {pikepdf.__version__}"
        keywords = "; ".join(v for v in (metadata.case_id, metadata.kind) if v)
        if keywords:
            meta["pdf:Keywords"] = keywords
        for name, value, _ in own:
            meta[f"{SOHOA_XMP_PREFIX}:{name}"] = value
    # PDF/A only accepts properties outside the standard schemas when the XMP describes them.
    xmp = pdf.Root.Metadata.read_bytes()
    end = xmp.rindex(b"</rdf:RDF>")
    pdf.Root.Metadata.write(xmp[:end] + _extension_schema(own) + xmp[end:])
    for name, value, _ in own:
        pdf.docinfo[Name("/Sohoa" + name[0].upper() + name[1:])] = pikepdf.String(value)
_OWN_PROPERTIES = {
    "caseId": "Dossier code (ma ho so) of the case this e-file belongs to",
    "sourceSha256": "SHA-256 of the scanned source file, hex",
    "softwareVersion": "Version of the sohoa software that made this file",
    "operator": "Scanning-desk operator who converted the paper",
    "kind": "Kind of document (thanh phan ho so)",
    "resultCode": "Digitization result code (ma ket qua so hoa) of this e-file",
}


def _own_properties(metadata: PdfMetadata) -> list[tuple[str, str, str]]:
    """(name, value, description) of each of our XMP properties that has a value."""
    values = {
        "caseId": metadata.case_id,
        "sourceSha256": metadata.source_sha256,
        "softwareVersion": metadata.software_version,
        "operator": metadata.operator,
        "kind": metadata.kind,
        "resultCode": metadata.result_code,
    }
    return [(name, value, _OWN_PROPERTIES[name]) for name, value in values.items() if value]


def _extension_schema(own: list[tuple[str, str, str]]) -> bytes:
    """The pdfaExtension description of our namespace, as one rdf:Description."""
    props = "".join(
        "<rdf:li rdf:parseType=\"Resource\">"
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description>"
        "</rdf:li>"
        for name, _, description in own
    )
    return (
        "<rdf:Description rdf:about=\"\""
        " xmlns:pdfaExtension=\"http://www.aiim.org/pdfa/ns/extension/\""
        " xmlns:pdfaSchema=\"http://www.aiim.org/pdfa/ns/schema#\""
        " xmlns:pdfaProperty=\"http://www.aiim.org/pdfa/ns/property#\">"
        "<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType=\"Resource\">"
        "<pdfaSchema:schema>sohoa e-file</pdfaSchema:schema>"
        f"<pdfaSchema:namespaceURI>{SOHOA_XMP_NS}</pdfaSchema:namespaceURI>"
        f"<pdfaSchema:prefix>{SOHOA_XMP_PREFIX}</pdfaSchema:prefix>"
        f"<pdfaSchema:property><rdf:Seq>{props}</rdf:Seq></pdfaSchema:property>"
        "</rdf:li></rdf:Bag></pdfaExtension:schemas>"
        "</rdf:Description>\n"
    ).encode("utf-8")


def add_srgb_output_intent(pdf: pikepdf.Pdf) -> None:
    """The sRGB output intent PDF/A needs for device colour (our JPEGs are DeviceRGB)."""
    profile = pdf.make_stream(_srgb_icc())
    profile.N = 3
    intent = Dictionary(
        Type=Name.OutputIntent, S=Name.GTS_PDFA1,
        OutputConditionIdentifier=pikepdf.String("sRGB"),
        Info=pikepdf.String("sRGB IEC61966-2.1"),
        DestOutputProfile=profile,
    )
    pdf.Root.OutputIntents = Array([pdf.make_indirect(intent)])


@functools.cache
def _srgb_icc() -> bytes:
    """An sRGB ICC profile made by LittleCMS (display class, version 4: accepted by PDF/A-2)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def pdfa_problems(path: Path) -> list[str]:
    """A quick structural self-check of a built e-file's PDF/A-2b markers ([] = none found).

    Not a validator (veraPDF is one): it checks what this module promises to write, so a flow
    can refuse to store a file that lost them.
    """
    problems: list[str] = []
    with open_pdf(Path(path)) as pdf:
        if pdf.is_encrypted:
            problems.append("the file is encrypted")
        if Name.ID not in pdf.trailer:
            problems.append("the trailer has no /ID")
        meta = pdf.open_metadata()
        if meta.get("pdfaid:part") != "2" or meta.get("pdfaid:conformance") != "B":
            problems.append("the XMP does not declare PDF/A-2b (pdfaid:part 2, pdfaid:conformance B)")
        if not meta.get("dc:title"):
            problems.append("the XMP has no dc:title")
        intents = pdf.Root.get(Name.OutputIntents, Array())
        if not any(i.get(Name.S) == Name.GTS_PDFA1 and Name.DestOutputProfile in i for i in intents):
            problems.append("there is no /GTS_PDFA1 output intent with an ICC profile")
        for number, page in enumerate(pdf.pages, start=1):
            fonts = page.obj.get(Name.Resources, Dictionary()).get(Name.Font, Dictionary())
            for key, font in fonts.items():
                if not _font_embedded(font):
                    problems.append(f"page {number}: font {key} is not embedded")
    return problems


def _font_embedded(font: pikepdf.Object) -> bool:
    """True when the font (or its descendant, for Type0) carries its font program."""
    if font.get(Name.Subtype) == Name.Type3:
        return True
    if font.get(Name.Subtype) == Name.Type0:
        font = font.DescendantFonts[0]
    descriptor = font.get(Name.FontDescriptor)
    return descriptor is not None and any(
        k in descriptor for k in (Name.FontFile, Name.FontFile2, Name.FontFile3)
    )
