"""The two Tesseract engines side by side: plain reading and sohoa's pipeline, CER, word recall, CPU.

``python bench/ocr/engines.py SET[:N] ... [--modes plain-cli,plain-inproc,sohoa-cli,sohoa-inproc]``
(SET: a synthetic set of compare.py, ``real-pages`` or ``real-lines``). Everything runs in this one
process, one page at a time, the modes one after the other on each set, so their CPU ratios are
comparable on a shared machine (CPU = user + system of this process and its children).
``plain-cli`` is ``tesseract IMAGE out -l vie`` per page (``--psm 7`` for line crops), ``plain-inproc``
the same reading by the in-process engine (pipeline/ocr_engine.py), unfiltered; ``sohoa-*`` is
``process_document`` with SOHOA_OCR_ENGINE set. Word recall: the share of the truth's words found
anywhere in the text (order-free, as search uses it).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402
import runs  # noqa: E402

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
MODES = ("plain-cli", "plain-inproc", "sohoa-cli", "sohoa-inproc")


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def read(mode: str, ps: corpus.PageSet, tmp: Path) -> list[str]:
    if mode == "plain-cli":
        return runs.tesseract_pages(ps.pages, tmp / "floor", jobs=1, psm="7" if ps.lines else None)
    if mode == "plain-inproc":
        from pipeline import ocr_engine

        return [runs.data_text(ocr_engine.read_words(page, dpi=None, lang="vie", single_line=ps.lines))
                for page in ps.pages]
    from pipeline.document import process_document

    os.environ["SOHOA_OCR_ENGINE"] = "cli" if mode == "sohoa-cli" else "tesserocr"
    if ps.lines:
        os.environ.update(corpus.LINE_CROP_ENV)
    res = process_document(ps.pages, workdir=tmp / mode, out_pdf=tmp / f"{mode}.pdf", jobs=1, keep_blank=True)
    return res.page_texts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--warm", action="store_true", help="load the in-process model before timing")
    a = ap.parse_args()
    modes = a.modes.split(",")
    if a.warm:
        from pipeline import ocr_engine

        with ocr_engine._api("vie"):
            pass
    print("| set | mode | CER % | word recall % | CPU s | CPU / plain-cli |")
    print("|---|---|---:|---:|---:|---:|")
    for arg in a.sets:
        name, _, n = arg.partition(":")
        import quick_cer

        ps = quick_cer.load(name, int(n or 3))
        real = name.startswith("real")
        base = None
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                c0, t0 = cpu(), time.perf_counter()
                texts = read(mode, ps, Path(tmp))
                used = cpu() - c0
            base = used if mode == "plain-cli" else base
            s = corpus.score(ps.truths, texts, real=real)
            ratio = f"{used / base:.2f}" if base else "–"
            print(f"| {name}:{len(ps.pages)} | {mode} | {100 * s.cer:.2f} | {100 * s.recall:.1f} | "
                  f"{used:.1f} | {ratio} |", flush=True)
            if os.environ.get("ENGINES_DUMP"):
                d = Path(os.environ["ENGINES_DUMP"]) / name / mode
                d.mkdir(parents=True, exist_ok=True)
                for i, t in enumerate(texts):
                    (d / f"{i:03d}.txt").write_text(t)


if __name__ == "__main__":
    main()
