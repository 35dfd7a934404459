"""Transfer packages (gói tin thu nộp): one BagIt bag (RFC 8493, SHA-256) per record, with a METS document.

The only module that imports ``bagit``, ``metsrw`` and lxml. Files in, a bag out, nothing stored:
``flows.transfer`` fetches a case's files into a staging folder and calls ``finish_package``;
``verify_package`` checks a bag on its own (bag valid, every hash, METS consistent, signatures).

Layout of a bag (``<out>/<case-id>/``)::

    bagit.txt, bag-info.txt, manifest-sha256.txt, tagmanifest-sha256.txt
    data/METS.xml                        the record, its files (SHA-256) and PREMIS events
    data/metadata/record.json            the record in the circular's field names (and sohoa's own)
    data/objects/<case>.<NNN>.pdf        the searchable PDF/A of document NNN (order in the case)
    data/originals/<case>.<NNN>.<ext>    the scan it was made from
    data/ocr/<case>.<NNN>.txt            its OCR text, pages separated by form feeds
"""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bagit
import metsrw
from lxml import etree

from models.record import CASE_FIELDS, DOCUMENT_FIELDS, EXTRA_CASE_FIELDS, CaseRecord

PREMIS_NS = "http://www.loc.gov/premis/v3"
RECORD_NS = "urn:sohoa:tt05-2025-bnv"
GROUPS = {"searchable": "objects", "original": "originals", "ocr": "ocr"}
_NAMESPACE = uuid.UUID("8f3c8a52-6d8e-4a8b-9a53-0d1e0d8b2a10")


@dataclass(frozen=True)
class PackageFile:
    """A file already placed in the staging folder at ``rel`` (e.g. ``objects/<case>.001.pdf``)."""

    rel: str
    use: str  # searchable | original | ocr
    document_id: str
    order: int
    sha256: str


@dataclass(frozen=True)
class PremisEvent:
    """One event of a record's history (PREMIS 3): what, when, who/what did it, with what result."""

    type: str  # ingestion, creation, digital signature generation, fixity check, metadata modification …
    when: str  # ISO 8601
    agent: str
    agent_type: str = "person"  # person | software | organization
    detail: str = ""
    outcome: str = "success"
    document_id: str | None = None  # None: the record as a whole
    uses: tuple[str, ...] = ("searchable",)  # which of the document's files it concerns


@dataclass
class PackageProblem:
    """Something ``verify_package`` found wrong."""

    what: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        return f"{self.what}: {self.detail}" if self.detail else self.what


def staging_dir(out_dir: Path, case_id: str) -> Path:
    """A fresh folder beside the final bag; files go under ``objects/``, ``originals/``, ``ocr/``."""
    stage = out_dir / f".{case_id}.partial"
    if stage.exists():
        shutil.rmtree(stage)
    for sub in GROUPS.values():
        (stage / sub).mkdir(parents=True)
    return stage


def sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def circular_record(record: CaseRecord, signatures: dict[str, int] | None = None) -> dict[str, Any]:
    """The record under the circular's field names (Vietnamese), its documents too, and sohoa's own form
    (with how many signatures each searchable PDF carried when it was packed)."""
    fields = {label: value for _, label, value in record.circular_fields()}
    docs = [{label: getattr(d, name) for name, label in DOCUMENT_FIELDS.items()} for d in record.documents]
    own = record.to_dict() | {"signed_documents": [{"document_id": k, "signatures": v}
                                                   for k, v in sorted((signatures or {}).items()) if v]}
    return {"Hồ sơ": fields, "Tài liệu": docs, "sohoa": own}


def _record_xml(record: CaseRecord) -> etree._Element:
    root = etree.Element(f"{{{RECORD_NS}}}hoSo", nsmap={"tt05": RECORD_NS})
    for name, label, value in record.circular_fields():
        el = etree.SubElement(root, f"{{{RECORD_NS}}}truong", ten=label, ma=name)
        el.text = "" if value is None else str(value)
    for doc in record.documents:
        d = etree.SubElement(root, f"{{{RECORD_NS}}}taiLieu", thuTu=str(doc.order), ma=doc.document_id)
        for name, label in DOCUMENT_FIELDS.items():
            value = getattr(doc, name)
            el = etree.SubElement(d, f"{{{RECORD_NS}}}truong", ten=label, ma=name)
            el.text = "" if value is None else str(value)
    return root


def _dublin_core(record: CaseRecord) -> etree._Element:
    dc = "http://purl.org/dc/elements/1.1/"
    root = etree.Element("{http://purl.org/dc/terms/}dublincore", nsmap={"dc": dc, "dcterms": "http://purl.org/dc/terms/"})
    for tag, value in (("title", record.title), ("identifier", record.case_id), ("language", record.language),
                       ("date", "/".join(x for x in (record.start_date, record.end_date) if x)),
                       ("subject", "; ".join(record.keywords or [])), ("rights", record.access_level),
                       ("type", "Hồ sơ số hóa")):
        if value:
            etree.SubElement(root, f"{{{dc}}}{tag}").text = str(value)
    return root


def _premis_event(ev: PremisEvent, case_id: str, n: int) -> etree._Element:
    p = f"{{{PREMIS_NS}}}"
    root = etree.Element(p + "event", nsmap={"premis": PREMIS_NS}, version="3.0")
    ident = etree.SubElement(root, p + "eventIdentifier")
    etree.SubElement(ident, p + "eventIdentifierType").text = "UUID"
    etree.SubElement(ident, p + "eventIdentifierValue").text = str(uuid.uuid5(_NAMESPACE, f"{case_id}/{n}/{ev.type}/{ev.when}"))
    etree.SubElement(root, p + "eventType").text = ev.type
    etree.SubElement(root, p + "eventDateTime").text = ev.when
    if ev.detail:
        info = etree.SubElement(root, p + "eventDetailInformation")
        etree.SubElement(info, p + "eventDetail").text = ev.detail
    out = etree.SubElement(root, p + "eventOutcomeInformation")
    etree.SubElement(out, p + "eventOutcome").text = ev.outcome
    agent = etree.SubElement(root, p + "linkingAgentIdentifier")
    etree.SubElement(agent, p + "linkingAgentIdentifierType").text = ev.agent_type
    etree.SubElement(agent, p + "linkingAgentIdentifierValue").text = ev.agent
    return root


def build_mets(record: CaseRecord, files: Sequence[PackageFile], events: Sequence[PremisEvent], *,
               software: str) -> metsrw.METSDocument:
    """The METS document of one record: a div per document, its files with SHA-256, PREMIS events."""
    mets = metsrw.METSDocument()
    mets.objid = record.case_id
    mets.agents = [metsrw.Agent("CREATOR", type="OTHER", name=software)]
    by_doc: dict[str, dict[str, metsrw.FSEntry]] = {}
    doc_dirs = []
    for meta in record.documents:
        entries = {}
        for f in (f for f in files if f.document_id == meta.document_id):
            entries[f.use] = metsrw.FSEntry(path=f"data/{f.rel}", label=Path(f.rel).name, use=f.use,
                                            file_uuid=str(uuid.uuid5(_NAMESPACE, f"{record.case_id}/{f.rel}")),
                                            checksum=f.sha256, checksumtype="SHA-256")
        by_doc[meta.document_id] = entries
        label = f"{meta.order:03d} {meta.kind or 'Tài liệu'}"
        doc_dirs.append(metsrw.FSEntry.dir(label, [entries[u] for u in ("searchable", "original", "ocr") if u in entries]))
    root = metsrw.FSEntry.dir(record.case_id, doc_dirs)
    root.add_dmdsec(_record_xml(record), "OTHER", othermdtype="TT05-2025-BNV")
    root.add_dublin_core(_dublin_core(record))
    for n, ev in enumerate(events):
        el = _premis_event(ev, record.case_id, n)
        targets = [by_doc.get(ev.document_id, {}).get(u) for u in ev.uses] if ev.document_id else [root]
        for target in (t for t in targets if t is not None):
            target.add_premis_event(copy.deepcopy(el))  # an lxml element has one parent: each target its own
    mets.append_file(root)
    return mets


def finish_package(stage: Path, out_dir: Path, record: CaseRecord, files: Sequence[PackageFile],
                   events: Sequence[PremisEvent], *, software: str, bag_info: dict[str, str],
                   signatures: dict[str, int] | None = None) -> Path:
    """Write METS and the record, make the bag (SHA-256 manifests), move it to ``<out>/<case-id>``."""
    (stage / "metadata").mkdir(exist_ok=True)
    (stage / "metadata" / "record.json").write_text(
        json.dumps(circular_record(record, signatures), ensure_ascii=False, indent=1), encoding="utf-8")
    build_mets(record, files, events, software=software).write(str(stage / "METS.xml"), fully_qualified=True,
                                                                 pretty_print=True)
    info = {"Source-Organization": bag_info.get("Source-Organization", ""), "External-Identifier": record.case_id,
            "External-Description": record.title or "", "Bagging-Date": dt.date.today().isoformat(),
            "Bag-Software-Agent": software, **bag_info}
    bagit.make_bag(str(stage), {k: v for k, v in info.items() if v}, processes=1, checksums=["sha256"])
    final = out_dir / record.case_id
    if final.exists():
        shutil.rmtree(final)
    os.replace(stage, final)
    return final


def read_mets_files(mets_path: Path) -> list[tuple[str, str, str]]:
    """(href, checksum, use) of every file the METS lists."""
    tree = etree.parse(str(mets_path))
    ns = {"mets": metsrw.NAMESPACES["mets"], "xlink": metsrw.NAMESPACES["xlink"]}
    out = []
    for grp in tree.iterfind(".//mets:fileGrp", ns):
        for f in grp.iterfind("mets:file", ns):
            loc = f.find("mets:FLocat", ns)
            href = metsrw.urldecode(loc.get(f"{{{ns['xlink']}}}href")) if loc is not None else ""
            out.append((href, f.get("CHECKSUM", ""), grp.get("USE", "")))
    return out


def _about_trust(problem: str) -> bool:
    """A problem only trust roots can settle (without them a package is checked for integrity only)."""
    return "trust" in problem or "TSA" in problem


def verify_package(path: Path, *, trust_roots: Sequence[Path] = ()) -> list[PackageProblem]:
    """Every problem of a package on its own (empty when sound): bag, hashes, METS, record, signatures."""
    from pipeline.sign import verify_pdf

    problems: list[PackageProblem] = []
    try:
        bag = bagit.Bag(str(path))
        bag.validate(processes=1)
    except bagit.BagValidationError as exc:
        details = [str(d) for d in getattr(exc, "details", [])] or [str(exc)]
        problems += [PackageProblem("bag không hợp lệ (invalid bag)", d) for d in details]
    except bagit.BagError as exc:
        return [PackageProblem("không phải gói BagIt (not a BagIt bag)", str(exc))]
    data = path / "data"
    mets_path = data / "METS.xml"
    try:
        listed = read_mets_files(mets_path)
        record = json.loads((data / "metadata" / "record.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, etree.XMLSyntaxError) as exc:
        return problems + [PackageProblem("METS hoặc record.json không đọc được (unreadable METS/record)", str(exc))]
    seen = set()
    for href, checksum, _use in listed:
        rel = href.removeprefix("data/")
        target = data / rel
        seen.add(rel)
        if not target.is_file():
            problems.append(PackageProblem("METS liệt kê tệp không có trong gói (METS lists a missing file)", href))
        elif sha256_path(target) != checksum:
            problems.append(PackageProblem("mã băm khác METS (hash differs from METS)", href))
    for sub in GROUPS.values():
        for f in sorted((data / sub).glob("*")) if (data / sub).is_dir() else []:
            if f"{sub}/{f.name}" not in seen:
                problems.append(PackageProblem("tệp không có trong METS (file not in METS)", f"data/{sub}/{f.name}"))
    own = record.get("sohoa") or {}
    objid = etree.parse(str(mets_path)).getroot().get("OBJID")
    if objid != own.get("case_id") or record.get("Hồ sơ", {}).get(CASE_FIELDS["case_id"]) != objid:
        problems.append(PackageProblem("mã hồ sơ trong METS và record.json khác nhau (case ID mismatch)", str(objid)))
    signed = {d["document_id"]: d for d in own.get("signed_documents", [])}
    for href, _, use in listed:
        if use != "searchable" or not (data / href.removeprefix("data/")).is_file():
            continue
        doc_id = next((d["document_id"] for d in own.get("documents", []) if Path(href).stem.endswith(
            f".{int(d['order']):03d}")), None)
        expected = int(signed.get(doc_id, {}).get("signatures", 0))
        if not expected:
            continue
        checks = verify_pdf(data / href.removeprefix("data/"), trust_roots=list(trust_roots))
        if len(checks) < expected:
            problems.append(PackageProblem("thiếu chữ ký số (signatures missing)", f"{href}: {len(checks)}/{expected}"))
        for c in checks:
            bad = [p for p in c.problems if trust_roots or not _about_trust(p)]
            if not c.intact or bad:
                problems.append(PackageProblem("chữ ký số không còn hợp lệ (signature no longer valid)",
                                               f"{href} {c.field}: {'; '.join(bad) or 'integrity'}"))
    return problems


__all__ = ["EXTRA_CASE_FIELDS", "PackageFile", "PackageProblem", "PremisEvent", "build_mets", "circular_record",
           "finish_package", "staging_dir", "verify_package"]
