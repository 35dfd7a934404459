"""Serving stored files: ETag (the SHA-256), single HTTP ranges, inline or attachment, streamed from disk."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from storage.dossiers import read_range

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def disposition(filename: str, *, inline: bool) -> str:
    """Content-Disposition with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", filename.encode("ascii", "ignore").decode()) or "file"
    return f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def file_response(request: Request, path: Path, *, sha256: str, filename: str, content_type: str,
                  inline: bool = False) -> Response:
    """200 / 206 / 304 / 416 for a local file whose content hash is ``sha256``."""
    etag = f'"{sha256}"'
    size = path.stat().st_size
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Disposition": disposition(filename, inline=inline),
               "Cache-Control": "private, no-cache"}
    if inline:
        headers["X-Sohoa-Framable"] = "1"
    if_none = request.headers.get("if-none-match")
    if if_none and (if_none.strip() == "*" or etag in [t.strip() for t in if_none.split(",")]):
        return Response(status_code=304, headers=headers)
    start, end, status = 0, size - 1, 200
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if wanted and (if_range is None or if_range.strip() == etag):
        m = _RANGE.fullmatch(wanted.strip())
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # a suffix: the last N bytes
                start = max(0, size - int(m.group(2)))
            if start >= size or start > end:
                return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=content_type)
    return StreamingResponse(read_range(path, start, end), status_code=status, headers=headers,
                             media_type=content_type)
