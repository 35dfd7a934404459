"""CPU of the curl check and of dewarping against Tesseract's reading of the same page.

``python bench/ocr/dewarp_cost.py PAGE ...`` (page images, e.g. curl.py's or synth_scans.py's). Per
page, in this one thread: the photo rectified as ``sohoa pdf`` does, then ``dewarp.measure`` (what
every page pays), ``dewarp.straighten`` (what a curled page pays, the check included), and
Tesseract reading the cleaned page (``document.read_cleaned``). CPU seconds of this thread, so
other work on the machine does not count; the in-process engine reads in the calling thread.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    import argparse

    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="+", help="page images")
    args = ap.parse_args()

    from pipeline import camera, clean, dewarp, scale
    from pipeline.document import read_cleaned
    from pipeline.reader import read_pages

    for arg in args.pages:
        with tempfile.TemporaryDirectory() as tmp:
            raw = next(read_pages(Path(arg), Path(tmp)))
            image = cv2.imread(str(raw.path), cv2.IMREAD_UNCHANGED)
            grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            photo = camera.find_page(grey)
            dpi = raw.dpi
            if photo is not None:
                image, dpi = camera.rectify(image, photo), photo.dpi
            elif raw.dpi_estimated:
                dpi = scale.reading_dpi(grey, raw.dpi)
            t0 = time.thread_time()
            bend = dewarp.measure(image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dpi=dpi)
            t1 = time.thread_time()
            out = dewarp.straighten(image, dpi=dpi)
            t2 = time.thread_time()
            page = Path(tmp) / "page.png"
            cv2.imwrite(str(page), image if out is None else out)
            cleaned = clean.clean_page(page, dpi=dpi, workdir=Path(tmp), stem="p", detect_orientation=False)
            t3 = time.thread_time()
            read_cleaned(cleaned)
            t4 = time.thread_time()
        curved = bend is not None and bend.curved
        print(f"{Path(arg).parent.parent.name}/{Path(arg).name}: check {1000 * (t1 - t0):.0f} ms, "
              f"straighten {1000 * (t2 - t1):.0f} ms ({'curved' if curved else 'flat'}), "
              f"Tesseract {t4 - t3:.2f} s: check {100 * (t1 - t0) / (t4 - t3):.1f} %, "
              f"straighten {100 * (t2 - t1) / (t4 - t3):.1f} % of Tesseract", flush=True)


if __name__ == "__main__":
    main()
