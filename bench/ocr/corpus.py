"""The OCR benchmark's page sets with their ground truth, and how a reading of them is scored."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(os.environ.get("SOHOA_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the repo
SYNTH = SHARED / "bench" / "synth_scans.py"
REALDATA = SHARED / "realdata"
ROOT = Path(__file__).resolve().parents[2]
# The project's own real-scan set (issue 19): its provenance and checked transcriptions are in
# bench/realscans/; its page images are not ours to commit (see bench/realscans/SOURCE.md), so they
# are read from ../realscans/pages beside the repository, or from $SOHOA_REALSCANS, and checked
# against the manifest's SHA-256 before use.
REALSCANS_DIR = ROOT / "bench" / "realscans"
REALSCANS_PAGES = Path(os.environ.get("SOHOA_REALSCANS") or ROOT.parent / "realscans" / "pages")

# name, synth_scans.py arguments; the seal set is what a counter scanner in colour mode gives.
SYNTH_SETS = {
    "clean": ["--profile", "clean", "--format", "png"],
    "office": ["--profile", "office", "--format", "jpg"],
    "rough": ["--profile", "rough", "--format", "png"],
    "seal": ["--profile", "office", "--format", "png", "--stamp", "--font", "sans", "--dpi", "200"],
    # issue 14: a red seal on an office scan; phone photos (perspective, shadow, soft focus, 72-dpi header)
    "office-stamp": ["--profile", "office", "--stamp", "--format", "jpg"],
    "phone": ["--profile", "phone", "--format", "jpg"],
    "phone-stamp": ["--profile", "phone", "--stamp", "--format", "jpg"],
}
# The synthetic forms (bench/forms/make_forms.py: Decree 30 header, label rows with dotted leaders,
# a citizen ID in comb boxes, a small ruled table, a closing, some with a seal and a signature):
# name, make_forms.py arguments.
FORMS = ROOT / "bench" / "forms" / "make_forms.py"
FORM_SETS = {"forms": ["--seed", "30"]}
# The real line crops (dl_06.png is 638x19) are longer than the reader lets a page be (25x its
# width); for those sets sohoa runs with the shape limit lifted (see README, Input limits).
LINE_CROP_ENV = {"SOHOA_MAX_ASPECT": "1000"}


def _load_cer():
    spec = importlib.util.spec_from_file_location("shared_cer", SHARED / "bench" / "cer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cer = _load_cer()


@dataclass
class PageSet:
    """Page images with their ground truth, one truth string per page."""

    name: str
    pages: list[Path]
    truths: list[str]
    lines: bool = False  # line crops: Tesseract reads each as one line (--psm 7)


def synth_set(name: str, args: list[str], *, pages: int, workdir: Path) -> PageSet:
    """Generate (or reuse) one synthetic set."""
    out = workdir / "corpus" / f"{name}-{pages}"
    if not (out / "manifest.tsv").exists():
        seed = sorted((SHARED / "seed").glob("*.txt"))[0]
        subprocess.run([sys.executable, str(SYNTH), str(seed), str(out), "--pages", str(pages), *args],
                       check=True, capture_output=True)
    return _from_manifest(name, out)


def form_set(name: str, args: list[str], *, pages: int, workdir: Path) -> PageSet:
    """Generate (or reuse) one set of synthetic forms; cached by its arguments and the generator."""
    key = hashlib.sha256("\0".join([*args, FORMS.read_text("utf-8")]).encode()).hexdigest()[:10]
    out = workdir / "corpus" / f"{name}-{pages}-{key}"
    if not (out / "manifest.tsv").exists():
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        subprocess.run([sys.executable, str(FORMS), str(out), "--pages", str(pages), *args],
                       check=True, capture_output=True, env=env)
    return _from_manifest(name, out)


GENERATED_SETS = [*SYNTH_SETS, *FORM_SETS]


def generated_set(name: str, *, pages: int, workdir: Path) -> PageSet:
    """A synthetic set by name: a page set of synth_scans.py or a set of forms."""
    if name in FORM_SETS:
        return form_set(name, FORM_SETS[name], pages=pages, workdir=workdir)
    return synth_set(name, SYNTH_SETS[name], pages=pages, workdir=workdir)


def _from_manifest(name: str, out: Path) -> PageSet:
    """A generated set's pages and truths, as its manifest.tsv lists them (image, truth per row)."""
    rows = [r.split("\t") for r in (out / "manifest.tsv").read_text().splitlines()[1:]]
    return PageSet(name, [out / r[0] for r in rows], [(out / r[1]).read_text("utf-8") for r in rows])


def real_sets() -> list[PageSet]:
    """The two real letter pages and the real line crops, from the checked manifest."""
    pages, lines = PageSet("real-pages", [], []), PageSet("real-lines", [], [], lines=True)
    for row in (REALDATA / "manifest.tsv").read_text("utf-8").splitlines()[1:]:
        path, truth = row.split("\t", 1)
        target = pages if path.startswith("pages/") else lines
        target.pages.append(REALDATA / path)
        target.truths.append(truth.replace("\\n", "\n"))
    return [s for s in (pages, lines) if s.pages]


def real_scan_sets() -> tuple[list[PageSet], str]:
    """The real-scan set (every page) and its table/form pages as a set of their own, with the
    reason for any page left out (missing or changed image); ([], reason) when no image is here."""
    header, *lines = (REALSCANS_DIR / "manifest.tsv").read_text("utf-8").splitlines()
    rows = [dict(zip(header.split("\t"), line.split("\t"))) for line in lines if line.strip()]
    every, tables, skipped = PageSet("real-scans", [], []), PageSet("real-tables", [], []), []
    for row in rows:
        image = REALSCANS_PAGES / row["file"]
        truth = REALSCANS_DIR / "gt" / f"{row['page_id']}.gt.txt"
        if not image.exists():
            skipped.append(f"{row['page_id']}: no image at {image}")
            continue
        if hashlib.sha256(image.read_bytes()).hexdigest() != row["sha256"]:
            skipped.append(f"{row['page_id']}: {image} is not the page of the manifest (SHA-256 differs)")
            continue
        for target in (every, tables) if {"table", "form"} & set(row["features"].split(",")) else (every,):
            target.pages.append(image)
            target.truths.append(truth.read_text("utf-8"))
    reason = "; ".join(skipped[:3]) + (f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else "")
    return [s for s in (every, tables) if s.pages], reason


def tokens(text: str) -> list[str]:
    """A text's words for word recall: NFC, the realdata convention, edge punctuation stripped."""
    out = []
    for t in norm_real(unicodedata.normalize("NFC", text)).split():
        t = t.strip(".,;:!?()[]\"'“”…-–")
        if t:
            out.append(t)
    return out


def word_recall(truths: list[str], texts: list[str]) -> float:
    """The share of the truth's words found anywhere in the text of the same page (order-free, as
    search uses it; a word counted as often as the page has it)."""
    found = total = 0
    for i, truth in enumerate(truths):
        want, have = Counter(tokens(truth)), Counter(tokens(texts[i] if i < len(texts) else ""))
        found += sum(min(n, have[w]) for w, n in want.items())
        total += sum(want.values())
    return found / max(total, 1)


def norm_real(text: str) -> str:
    """The realdata convention: '…' is scored as '...'."""
    return text.replace("…", "...")


@dataclass
class Score:
    cer: float
    wer: float
    recall: float = float("nan")


def score(truths: list[str], texts: list[str], *, real: bool) -> Score:
    """Micro-averaged CER and WER; missing pages count as empty (every truth character an error)."""
    ce = cn = we = wn = 0
    for i, truth in enumerate(truths):
        hyp = texts[i] if i < len(texts) else ""
        if real:
            truth, hyp = norm_real(truth), norm_real(hyp)
        e, n, w_e, w_n = cer.score(truth, hyp)
        ce, cn, we, wn = ce + e, cn + n, we + w_e, wn + w_n
    return Score(ce / max(cn, 1), we / max(wn, 1), word_recall(truths, texts))
