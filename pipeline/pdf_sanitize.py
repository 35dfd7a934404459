"""What an e-copy may keep of an incoming PDF's interactive parts: an allow-list applied to every object.

PDF/A forbids JavaScript, actions that run, launch or submit things, and embedded files; an e-copy
handed to citizens and other agencies must not carry them either. Rather than removing what was
seen in hostile files (a deny-list misses ``/Next`` chains, ``/AF``, field parents, ``javascript:``
links), every object reachable from the document is walked and only this is kept:

* a link action ``/S /URI`` whose URI is a plain ``http://`` or ``https://`` address, without ``/Next``;
* annotations of the kinds in ``ALLOWED_ANNOTATIONS`` (marks, notes, links, form widgets);
* nothing under the keys in ``DROPPED_KEYS`` (additional actions, associated and embedded files,
  open actions, JavaScript, XFA, rich media), and no ``/Next`` in an action (a chain of further
  actions; outline items' ``/Next``, the next bookmark, stays).

Any other action dictionary met on the way is emptied, so that no path to it can run it.
Only pikepdf objects are handled here; ``pipeline.pdf`` calls it (pikepdf stays within the ``pipeline/pdf*`` modules).
"""
from __future__ import annotations

from collections.abc import Iterable

import pikepdf
from pikepdf import Array, Dictionary, Name

# Annotation kinds an e-copy may show: text marks, notes, drawings, links and (action-free) form
# widgets. Everything else — file attachments, sound, movie, screen, rich media, 3D — goes.
ALLOWED_ANNOTATIONS = frozenset({
    "/Link", "/Text", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon", "/PolyLine",
    "/Highlight", "/Underline", "/Squiggly", "/StrikeOut", "/Stamp", "/Caret", "/Ink", "/Popup",
    "/Widget", "/PrinterMark", "/Watermark", "/Redact",
})
# Keys removed wherever they appear, with what the report calls them.
DROPPED_KEYS = {
    "/AA": "automatic actions (/AA)",
    "/AF": "associated files (/AF)",
    "/OpenAction": "open action",
    "/JS": "JavaScript",
    "/JavaScript": "document JavaScript",
    "/EmbeddedFiles": "embedded files",
    "/EF": "embedded files",
    "/FS": "attached file",
    "/XFA": "XFA form",
    "/RichMediaContent": "rich media",
    "/RichMediaSettings": "rich media",
}
# The action types of ISO 32000-2 (12.6.4): a dictionary with one of these as /S is an action.
ACTION_TYPES = frozenset({
    "/GoTo", "/GoToR", "/GoToE", "/GoToDp", "/Launch", "/Thread", "/URI", "/Sound", "/Movie", "/Hide",
    "/Named", "/SubmitForm", "/ResetForm", "/ImportData", "/JavaScript", "/SetOCGState", "/Rendition",
    "/Trans", "/GoTo3DView", "/RichMediaExecute",
})
SAFE_URI_SCHEMES = ("http://", "https://")


def safe_link(action: object) -> bool:
    """True for the one action an e-copy keeps: ``/S /URI`` to a plain http(s) address."""
    if not isinstance(action, Dictionary) or str(action.get(Name.S, "")) != "/URI":
        return False
    uri = action.get(Name.URI)
    if not isinstance(uri, pikepdf.String):
        return False
    try:
        text = bytes(uri).decode("latin-1")
    except (TypeError, ValueError):
        return False
    # Viewers strip leading blanks and control characters before reading the scheme.
    text = "".join(ch for ch in text if ord(ch) > 32).lower()
    return text.startswith(SAFE_URI_SCHEMES)


def _scheme(action: pikepdf.Object) -> str:
    """The scheme a refused URI link names (``javascript``, ``file``…), for the report."""
    uri = action.get(Name.URI)
    text = bytes(uri).decode("latin-1", "replace") if isinstance(uri, pikepdf.String) else ""
    scheme = "".join(ch for ch in text if ord(ch) > 32).split(":", 1)[0].lower()
    return scheme if scheme.isalpha() and len(scheme) <= 16 else "non-web"


def _is_action(d: pikepdf.Object) -> bool:
    return str(d.get(Name.S, "")) in ACTION_TYPES or str(d.get(Name.Type, "")) == "/Action"


def sanitize(pdf: pikepdf.Pdf) -> list[str]:
    """Apply the allow-list to every object reachable from ``pdf``'s trailer; returns what was removed."""
    return _walk([pdf.trailer], remove=True, start_page=None)


def page_active_content(page: pikepdf.Object) -> list[str]:
    """What copying ``page`` (a page dictionary) into an e-copy removes; the PDF is not changed."""
    return _walk([page], remove=False, start_page=page)


def _walk(start: Iterable[pikepdf.Object], *, remove: bool, start_page: pikepdf.Object | None) -> list[str]:
    """Depth-first over dictionaries, streams and arrays (iterative: hostile nesting is deep)."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = list(start)
    while stack:
        obj = stack.pop()
        if obj.is_indirect:
            if obj.objgen in seen:
                continue
            seen.add(obj.objgen)
        if isinstance(obj, Array):
            stack.extend(item for item in obj if isinstance(item, (Dictionary, Array, pikepdf.Stream)))
            continue
        if not isinstance(obj, (Dictionary, pikepdf.Stream)):
            continue
        if start_page is not None and str(obj.get(Name.Type, "")) in ("/Page", "/Pages") \
                and obj.objgen != start_page.objgen:
            continue  # reporting on one page: other pages (reached by /Parent, /P, /Dest) are not its own
        _clean_dict(obj, found, remove=remove)
        for key in list(obj.keys()):
            value = obj.get(key)
            if isinstance(value, (Dictionary, Array, pikepdf.Stream)):
                stack.append(value)
    return found


def _clean_dict(d: pikepdf.Object, found: list[str], *, remove: bool) -> None:
    """The allow-list on one dictionary (or stream dictionary)."""
    for key, what in DROPPED_KEYS.items():
        if key in d:
            found.append(what)
            if remove:
                del d[key]
    action = d.get(Name.A)
    if action is not None and not safe_link(action):
        kind = str(action.get(Name.S, "/unknown"))[1:] if isinstance(action, Dictionary) else "unknown"
        found.append(f"{_scheme(action)}: link" if kind == "URI" else f"{kind} action")
        if remove:
            del d[Name.A]
    annots = d.get(Name.Annots)
    if isinstance(annots, Array):
        kept = [a for a in annots if isinstance(a, Dictionary) and str(a.get(Name.Subtype, "")) in ALLOWED_ANNOTATIONS]
        for a in annots:
            if isinstance(a, Dictionary) and str(a.get(Name.Subtype, "")) not in ALLOWED_ANNOTATIONS:
                found.append(f"{str(a.get(Name.Subtype, '/unknown'))[1:]} annotation")
        if remove and len(kept) != len(annots):
            d[Name.Annots] = Array(kept)
    if _is_action(d) and Name.Next in d:
        found.append("chained actions (/Next)")
        if remove:
            del d[Name.Next]
    if _is_action(d) and not safe_link(d):
        # An action reachable by a key no viewer runs today: emptied, so no future path runs it.
        if remove and list(d.keys()):
            for key in list(d.keys()):
                del d[key]
