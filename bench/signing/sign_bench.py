#!/usr/bin/env python3
"""What signing costs: both signatures (operator, then agency) per document against the OCR of the same
document, and verification, on this machine.

Baseline (same run): the whole pipeline for the sample dossier's first page (read, clean, Tesseract vie,
PDF/A). Then, on that PDF, N rounds of `pipeline.sign.sign_pdf` (warm: keys, font and pyHanko loaded
once per process, as in a worker) and of `verify_pdf`:
  - the embedded default: TEST keys, in-process TEST TSA (PAdES B-T);
  - the loopback test PKI (tests/pki.py: certomancer TSA + OCSP over HTTP), PAdES B-LT, when
    certomancer is installed.
Targets: signing ≤ 0.3 s per document, verification ≤ 0.1 s per document.

    python bench/signing/sign_bench.py [--rounds 10]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(label: str, unsigned: Path, work: Path, config, operator: str, rounds: int, ocr_s: float) -> None:
    from pipeline import sign

    target = work / f"{label}.pdf"
    cold = None
    sign_times, verify_times = [], []
    for n in range(rounds + 1):
        shutil.copy(unsigned, target)
        t = timed(lambda: sign.sign_pdf(target, config=config, operator=operator, result_code=None))
        if n == 0:
            cold = t
        else:
            sign_times.append(t)
        verify_times.append(timed(lambda: sign.verify_pdf(target, trust_roots=config.trust_roots)))
    checks = sign.verify_pdf(target, trust_roots=config.trust_roots)
    levels = sorted({c.level for c in checks})
    problems = [p for c in checks for p in c.problems]
    med_s, med_v = statistics.median(sign_times), statistics.median(verify_times[1:])
    print(f"{label:<34} {', '.join(levels):<11} sign {med_s:6.3f} s (first {cold:5.2f} s, "
          f"{med_s / ocr_s:5.1%} of OCR)  verify {med_v:6.3f} s  {'OK' if not problems else problems}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    from pipeline.document import process_document
    from pipeline.keyring import init_test_keys, load_signing_config
    from pipeline.sample import make_sample_dossier

    with tempfile.TemporaryDirectory(prefix="sohoa-sign-bench-") as tmp:
        work = Path(tmp)
        page = make_sample_dossier(work / "sample")[1]
        unsigned = work / "unsigned.pdf"
        ocr_s = timed(lambda: process_document([page], workdir=work / "w", out_pdf=unsigned,
                                               case_id="000.00.01.H56-181010-0001", jobs=1))
        print(f"baseline: OCR pipeline for one page {ocr_s:.2f} s ({unsigned.stat().st_size // 1024} KB PDF/A)")
        config = init_test_keys(work / "keys", operator="demo")
        measure("embedded TEST keys, in-process TSA", unsigned, work, config, "demo", args.rounds, ocr_s)
        try:
            from tests.pki import OPERATOR, start_test_pki
        except ImportError as exc:
            print(f"SKIP loopback PKI: {exc}")
            return 0
        (work / "pki").mkdir()
        pki, stop = start_test_pki(work / "pki")
        try:
            measure("loopback PKI (HTTP TSA + OCSP)", unsigned, work, load_signing_config(pki.keys_dir, env={}),
                    OPERATOR, args.rounds, ocr_s)
        finally:
            stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
