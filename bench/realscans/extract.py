"""Rebuild the real-scan set's page images (not committed: see SOURCE.md) from local git clones.

``python bench/realscans/extract.py CLONES [--out ../realscans/pages]``: CLONES holds one clone (or
bare git directory) per source repository, named ``owner+name`` or ``name``. For every manifest row the
file is read at the row's commit (``git show``), page N of a PDF is cut out with poppler's ``pdfimages``
(the page's largest image: JPEG bytes kept, CCITT and JPEG 2000 decoded to PNG), and the result is
kept only if its SHA-256 is the manifest's. Prints one line per page: written, already there, or why not.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _git_dir(clones: Path, repo: str) -> Path | None:
    owner, name = repo.split("/")
    for candidate in (clones / f"{owner}+{name}", clones / name):
        for d in (candidate, candidate / "repo", candidate / ".git"):
            if (d / "HEAD").exists() or (d / ".git").exists():
                return d
    return None


def _path_at(git: Path, commit: str, path: str) -> str | None:
    """The file's real path at the commit (``<account>`` in the manifest stands for any one folder name)."""
    if "<account>" not in path:
        return path
    listing = subprocess.run(["git", "-C", str(git), "ls-tree", "-r", "--name-only", commit],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    pattern = path.replace("<account>", "*")
    return next((p for p in listing if fnmatch.fnmatchcase(p, pattern)), None)


def _page_image(data: bytes, page: int, work: Path) -> list[Path]:
    source = work / "source.pdf"
    source.write_bytes(data)
    subprocess.run(["pdfimages", "-j", "-png", "-f", str(page), "-l", str(page), str(source), str(work / "img")],
                   check=True, capture_output=True)
    return sorted(work.glob("img-*"), key=lambda p: p.stat().st_size, reverse=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clones", type=Path)
    ap.add_argument("--out", type=Path, default=HERE.parents[2] / "realscans" / "pages")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader((HERE / "manifest.tsv").open(encoding="utf-8"), delimiter="\t"))
    missing = 0
    for row in rows:
        target = a.out / row["file"]
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == row["sha256"]:
            print(f"{row['page_id']}: already there")
            continue
        git = _git_dir(a.clones, row["repo"])
        path = _path_at(git, row["commit"], row["path"]) if git else None
        if path is None:
            print(f"{row['page_id']}: no clone of {row['repo']} with {row['path']} in {a.clones}")
            missing += 1
            continue
        data = subprocess.run(["git", "-C", str(git), "show", f"{row['commit']}:{path}"],
                              capture_output=True, check=True).stdout
        with tempfile.TemporaryDirectory() as tmp:
            # (a signed PDF may carry bytes before its "%PDF-" header, which readers skip)
            candidates = _page_image(data, int(row["page"]), Path(tmp)) if b"%PDF-" in data[:1024] else []
            blobs = [c.read_bytes() for c in candidates] or [data]
            good = next((b for b in blobs if hashlib.sha256(b).hexdigest() == row["sha256"]), None)
        if good is None:
            print(f"{row['page_id']}: the page cut from {row['repo']}:{path} is not the manifest's (SHA-256 differs)")
            missing += 1
            continue
        target.write_bytes(good)
        print(f"{row['page_id']}: written to {target}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
