"""Quick iteration: sohoa (in-process) vs plain Tesseract on the first N pages of generated sets.

``python bench/ocr/quick_cer.py SET[:N] ...`` with SET a folder under bench/work/corpus (made by
compare.py or synth_scans.py; ``forms``: bench/forms/make_forms.py), ``real-pages``, ``real-lines``, ``real-scans`` or ``real-tables``; prints
CER, word recall and wall seconds of both and their ratio, and CER/recall per page. The floor is
Debian's ``tesseract`` command line, or with QUICK_FLOOR=inproc the plain in-process Tesseract 5.5.
No OCRmyPDF, no PDF checks: `make bench` is the measurement, this is for trying ideas.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402
import runs  # noqa: E402

os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def load(name: str, n: int) -> corpus.PageSet:
    if name in ("real-scans", "real-tables"):
        sets, missing = corpus.real_scan_sets()
        if missing:
            print(f"{name}: left out: {missing}", file=sys.stderr)
        ps = next(s for s in sets if s.name == name)
    elif name.startswith("real"):
        ps = next(s for s in corpus.real_sets() if s.name == name)
        if ps.lines:  # line crops are narrower than the reader's page-shape limit lets through
            os.environ.update(corpus.LINE_CROP_ENV)
    else:
        ps = corpus.generated_set(name, pages=8, workdir=corpus.ROOT / "bench" / "work")
        ps.name = name
    return corpus.PageSet(ps.name, ps.pages[:n], ps.truths[:n], ps.lines)


def main() -> None:
    from pipeline.document import process_document

    jobs = 2
    for arg in sys.argv[1:]:
        name, _, n = arg.partition(":")
        ps = load(name, int(n or 3))
        real = name.startswith("real")
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            texts = []
            # one document per page: what the bench does is one document of all pages; same work
            res = process_document(ps.pages, workdir=Path(tmp) / "w", out_pdf=Path(tmp) / "o.pdf",
                                   jobs=jobs, keep_blank=True)
            ts = time.perf_counter() - t0
            texts = res.page_texts
            t0 = time.perf_counter()
            if os.environ.get("QUICK_NO_FLOOR"):  # checking sohoa's CER only
                floor = [""] * len(ps.pages)
            elif os.environ.get("QUICK_FLOOR") == "inproc":
                floor = runs.inproc_pages(ps.pages, Path(tmp) / "floor", jobs=jobs, single_line=ps.lines)
            else:
                floor = runs.tesseract_pages(ps.pages, Path(tmp) / "floor", jobs=jobs,
                                                psm="7" if ps.lines else None)
            tf = time.perf_counter() - t0
        s, f = corpus.score(ps.truths, texts, real=real), corpus.score(ps.truths, floor, real=real)
        per = [corpus.score([t], [h], real=real) for t, h in zip(ps.truths, texts)]
        per_floor = [corpus.score([t], [h], real=real) for t, h in zip(ps.truths, floor)]
        print(f"load {os.getloadavg()[0]:.1f} {name}:{len(ps.pages)} sohoa {100*s.cer:.2f}% recall {100*s.recall:.1f}% "
              f"{ts:.1f}s | floor {100*f.cer:.2f}% recall {100*f.recall:.1f}% {tf:.1f}s | ratio {ts/tf:.2f} | "
              f"dpi {' '.join(f'{p.dpi:.0f}' for p in res.report.pages)}", flush=True)
        for page, a, b in zip(ps.pages, per, per_floor):
            print(f"  {page.name}: sohoa {100*a.cer:.1f}% / {100*a.recall:.1f}%  floor {100*b.cer:.1f}% / {100*b.recall:.1f}%")
        if os.environ.get("QUICK_DUMP"):
            Path(os.environ["QUICK_DUMP"]).mkdir(exist_ok=True, parents=True)
            for i, t in enumerate(texts):
                (Path(os.environ["QUICK_DUMP"]) / f"{name}-{i}.txt").write_text(t)
                (Path(os.environ["QUICK_DUMP"]) / f"{name}-{i}.floor.txt").write_text(floor[i])


if __name__ == "__main__":
    main()
