"""Curled pages through the real pipeline, with and without dewarping: word recall and CER per set.

``python bench/ocr/curl_eval.py [--off] [--dump DIR] SET_DIR ...`` with SET_DIR made by curl.py
(or synth_scans.py, or any folder with manifest.tsv). Each set is one document (``process_document``,
2 workers). ``--off`` reads with pipeline.dewarp and camera's curved-outline warp switched off (the code
before dewarping); ``--lines-only`` with the text-line dewarping alone. Word
recall is order-free: the share of the truth's words (as a multiset) found anywhere in the output,
what a search of the archive needs; CER is shared/bench/cer.py's, reading order included.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def words(text: str) -> Counter:
    return Counter(unicodedata.normalize("NFC", text).split())


def recall(truth: str, text: str) -> tuple[int, int]:
    want = words(truth)
    return sum((want & words(text)).values()), sum(want.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="+", type=Path)
    ap.add_argument("--off", action="store_true", help="dewarping and the curved-outline warp switched off")
    ap.add_argument("--lines-only", action="store_true", help="only the curved-outline warp switched off")
    ap.add_argument("--dump", type=Path, help="write each page's text here")
    args = ap.parse_args()
    from pipeline import camera, dewarp

    if args.off:
        dewarp.straighten = lambda image, **_kw: None
    if args.off or args.lines_only:
        camera._bowed_edge_maps = lambda capture, m: None
    from pipeline.document import process_document

    total_found = total_words = 0
    all_truths: list[str] = []
    all_texts: list[str] = []
    for folder in args.sets:
        rows = [r.split("\t") for r in (folder / "manifest.tsv").read_text().splitlines()[1:]]
        pages = [folder / r[0] for r in rows]
        truths = [(folder / r[1]).read_text("utf-8") for r in rows]
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.process_time()
            res = process_document(pages, workdir=Path(tmp) / "w", out_pdf=Path(tmp) / "o.pdf", jobs=2,
                                   keep_blank=True)
            cpu = time.process_time() - t0
        texts = res.page_texts
        found = sum(recall(t, h)[0] for t, h in zip(truths, texts))
        n = sum(recall(t, "")[1] for t in truths)
        total_found, total_words = total_found + found, total_words + n
        all_truths += truths
        all_texts += texts
        s = corpus.score(truths, texts, real=False)
        per = " ".join(f"{100 * recall(t, h)[0] / max(1, recall(t, '')[1]):.1f}" for t, h in zip(truths, texts))
        print(f"{folder.name:18s} words {100 * found / max(n, 1):5.1f}% CER {100 * s.cer:5.2f}% "
              f"per page {per} | cpu {cpu:.1f}s", flush=True)
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            for i, t in enumerate(texts):
                (args.dump / f"{folder.name}-{i + 1}.txt").write_text(t)
    s = corpus.score(all_truths, all_texts, real=False)
    print(f"{'ALL':18s} words {100 * total_found / max(total_words, 1):5.1f}% CER {100 * s.cer:5.2f}%")


if __name__ == "__main__":
    main()
