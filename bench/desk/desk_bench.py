#!/usr/bin/env python3
"""The counter's speed through the intake service, as ratios to ``sohoa pdf`` on the same pages, in one run.

What is timed (``upload complete`` = the job committed to the job store, which is where the HTTP
upload handler hands over; the network upload itself is not in it):

1. First page verdict: upload complete → the first page's verdict written to the job (one A4 page,
   300 dpi JPEG). Target ≤ 1 s.
2. One-page dossier: upload complete → stored (searchable PDF, OCR JSON, manifest, catalog), against
   ``sohoa pdf`` of the same page (a subprocess, as a user runs it). Target ≤ 1.5×.
3. Ten-page dossier (one 10-page TIFF as the scanner writes it): the same. Target ≤ 1.3×.
   Also reported: the same ten pages uploaded as ten JPEG files (assembled into one original).
4. Four operators upload a 5-page dossier each at the same moment: every first verdict ≤ 3 s, all
   stored, none failed; p50/p95/max of each step (first verdict, all verdicts, stored).

The service runs in this process with a Prefect started once beforehand (``PREFECT_API_URL`` when
set, else Prefect's temporary local server), like ``sohoa service``. Pages are synthetic 300-dpi
office scans made by ../shared/bench/synth_scans.py when it is there, else typeset here; every
repetition uses new pages, so nothing is "already stored".

Usage:  .venv/bin/python bench/desk/desk_bench.py [--repeat 2] [--parts one,ten,tenjpg,four,cli] [--out desk.md]
(``--parts four`` runs the four operators only, for trying ideas on the check lane.)
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import zlib
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("SOHOA_SHARED") or ROOT.parent / "shared")
CASE = "000.00.01.H56-181010-{:04d}"
FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
LINES = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "ĐƠN ĐỀ NGHỊ",
         "Kính gửi: Ủy ban nhân dân huyện Yên Sơn, tỉnh Tuyên Quang",
         "Tôi tên là Nguyễn Thị Hồng Nhung, sinh ngày 12 tháng 3 năm 1985, cư trú tại thôn Đồng Trò,",
         "xã Trung Môn, đề nghị cơ quan có thẩm quyền xem xét cấp giấy chứng nhận quyền sử dụng đất",
         "đối với thửa đất số 152, tờ bản đồ số 7, diện tích 245,6 m² theo hồ sơ kèm theo đơn này.",
         "Tôi xin cam đoan những nội dung kê khai trên là đúng sự thật và chịu trách nhiệm trước pháp luật."]


def make_pages(out: Path, n: int, tag: str) -> list[Path]:
    """``n`` distinct 300-dpi A4 JPEG pages (synthetic office scans)."""
    out.mkdir(parents=True, exist_ok=True)
    synth = SHARED / "bench" / "synth_scans.py"
    seeds = sorted((SHARED / "seed").glob("*.txt")) if (SHARED / "seed").is_dir() else []
    if synth.is_file() and seeds:
        text = out / "text.txt"
        text.write_text(f"Mã số {tag}\n" + seeds[0].read_text("utf-8"), encoding="utf-8")
        subprocess.run([sys.executable, str(synth), str(text), str(out), "--pages", str(n), "--dpi", "300",
                        "--profile", "office", "--format", "jpg", "--seed", str(zlib.crc32(tag.encode()) % 10000)],
                       check=True, capture_output=True)
        pages = sorted((out / "pages").glob("*.jpg"))
        if len(pages) >= n:
            return pages[:n]
    from PIL import Image, ImageDraw, ImageFont

    dpi = 300
    font = ImageFont.truetype(FONT, round(13 * dpi / 72))
    pages = []
    for i in range(n):
        page = Image.new("L", (round(8.27 * dpi), round(11.69 * dpi)), 250)
        draw = ImageDraw.Draw(page)
        y = dpi
        for line in [f"Mã tài liệu {tag}-{i + 1}"] + LINES * 3:
            draw.text((dpi, y), line, font=font, fill=20)
            y += round(13 * dpi / 72 * 1.5)
        path = out / f"page-{i + 1:02d}.jpg"
        page.save(path, quality=85, dpi=(dpi, dpi))
        pages.append(path)
    return pages


def as_tiff(pages: list[Path], out: Path) -> Path:
    from PIL import Image

    frames = [Image.open(p) for p in pages]
    frames[0].save(out, save_all=True, append_images=frames[1:], dpi=(300, 300), compression="jpeg", quality=85)
    return out


def sohoa_pdf(inputs: list[Path], out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", "pdf", *map(str, inputs), "-o", str(out)], cwd=ROOT, check=True,
                   capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return time.perf_counter() - started


class Watch:
    """Follows one job in the store: when its first verdict, all verdicts and its final status appeared."""

    def __init__(self, store, job_id: str, committed: float, pages: int) -> None:
        self.store, self.job_id, self.committed, self.pages = store, job_id, committed, pages
        self.first = self.all = self.final = None
        self.status = None

    def run(self, timeout: float = 600) -> Watch:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            job = self.store.require(self.job_id)
            now = time.perf_counter() - self.committed
            checked = sum(1 for p in job.pages if p.status == "checked")
            if checked and self.first is None:
                self.first = now
            if checked >= self.pages and self.all is None:
                self.all = now
            if job.final or job.status == "spooled":
                self.final, self.status = now, job.status
                return self
            time.sleep(0.01)
        self.status = "timeout"
        return self


def submit(service, files: list[Path], case: str, *, operator: str) -> tuple[str, float]:
    job = service.store.create(files, case_id=case, operator=operator, origin="api", on_rescan="store")
    committed = time.perf_counter()
    service.wake()
    return job.id, committed


def one_dossier(service, files: list[Path], case: str, pages: int) -> Watch:
    job_id, committed = submit(service, files, case, operator="bench")
    return Watch(service.store, job_id, committed, pages).run()


def time_watch(root: Path, pages: list[Path], case: str, env: dict[str, str]) -> dict[str, float]:
    """``sohoa watch INBOX`` as a user runs it: start-up until it says "watching", then per page, one at a
    time, from landing in INBOX (an atomic rename, the scanner's last byte) to its report in done/."""
    inbox, done = root / "inbox", root / "done"
    inbox.mkdir(parents=True)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "watch", str(inbox), "--case", case], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    out: dict[str, float] = {}
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if " watching " in line:
                out["watch_start"] = time.perf_counter() - started
                break
        else:
            raise RuntimeError("sohoa watch ended before it was watching")
        for n, page in enumerate(pages, start=1):
            staged = root / f"staged-{n}{page.suffix}"
            shutil.copy(page, staged)
            name = f"{n:02d}-{page.name}"
            landed = time.perf_counter()
            os.replace(staged, inbox / name)
            report = done / f"{name}.report.json"
            deadline = landed + 600
            while not report.exists():
                if time.perf_counter() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{name} did not reach done/ (failed/: {list((root / 'failed').glob('*'))})")
                time.sleep(0.02)
            out[f"watch_page{n}"] = time.perf_counter() - landed
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if len(values) == 1:
        return values[0]
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


PARTS = ("one", "ten", "tenjpg", "four", "cli", "watch")


def bench_environment(prefix: str) -> Path:
    """A throw-away data folder on the embedded default (local store, SQLite), quiet Prefect logs, one OCR thread."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["SOHOA_DATA_DIR"] = str(tmp / "data")
    os.environ.pop("SOHOA_DATABASE_URL", None)
    os.environ.pop("SOHOA_S3_ENDPOINT", None)
    return tmp


class LoadSampler:
    """The 1-minute load average every few seconds while the bench runs (the machine is shared)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every, self.samples, self._stop = every, [], threading.Event()

    def start(self) -> LoadSampler:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def stop(self) -> str:
        self._stop.set()
        s = sorted(self.samples) or [float("nan")]
        return f"min {s[0]:.2f}, median {statistics.median(s):.2f}, max {s[-1]:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, help="also write the Markdown table here")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {','.join(PARTS)}")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        ap.error(f"unknown parts: {', '.join(sorted(parts - set(PARTS)))}")
    tmp = bench_environment("sohoa-desk-bench-")

    from flows.service import IntakeService

    sampler = LoadSampler().start()
    started = time.perf_counter()
    service = IntakeService(workers=2, check_workers=4).start()
    if not service.wait_ready(300):
        print(f"Prefect did not start: {service.prefect_error}", file=sys.stderr)
        return 1
    print(f"service ready in {time.perf_counter() - started:.1f} s (paid once)", file=sys.stderr)
    rows: dict[str, list[float]] = {k: [] for k in (
        "first_verdict_1p", "stored_1p", "pdf_1p", "stored_10p", "pdf_10p", "stored_10jpg", "pdf_10jpg")}
    four: dict[str, list[float]] = {"first verdict": [], "all verdicts": [], "stored": []}
    failures: list[str] = []
    cli: dict[str, float] = {}
    seq = 0
    try:
        for r in range(args.repeat):
            if "one" in parts:
                # One page: sohoa pdf, then the service (then the other order next round).
                [page] = make_pages(tmp / f"one-{r}", 1, f"M{r}")
                order = ("pdf", "svc") if r % 2 == 0 else ("svc", "pdf")
                for what in order:
                    if what == "pdf":
                        rows["pdf_1p"].append(sohoa_pdf([page], tmp / f"one-{r}.pdf"))
                    else:
                        seq += 1
                        w = one_dossier(service, [page], CASE.format(seq), 1)
                        failures += [f"1p: {w.status}"] if w.status != "stored" else []
                        rows["first_verdict_1p"].append(w.first)
                        rows["stored_1p"].append(w.final)
            if "ten" in parts:
                # Ten pages, one TIFF.
                ten = make_pages(tmp / f"ten-{r}", 10, f"T{r}")
                tiff = as_tiff(ten, tmp / f"ten-{r}.tif")
                rows["pdf_10p"].append(sohoa_pdf([tiff], tmp / f"ten-{r}.pdf"))
                seq += 1
                w = one_dossier(service, [tiff], CASE.format(seq), 10)
                failures += [f"10p: {w.status}"] if w.status != "stored" else []
                rows["stored_10p"].append(w.final)
            if "tenjpg" in parts:
                # Ten pages as ten JPEG files (assembled into one original by the service).
                ten_jpg = make_pages(tmp / f"tenj-{r}", 10, f"J{r}")
                rows["pdf_10jpg"].append(sohoa_pdf(ten_jpg, tmp / f"tenj-{r}.pdf"))
                seq += 1
                w = one_dossier(service, ten_jpg, CASE.format(seq), 10)
                failures += [f"10jpg: {w.status}"] if w.status != "stored" else []
                rows["stored_10jpg"].append(w.final)
            if "four" in parts:
                # Four operators at once, a 5-page TIFF each.
                stacks = []
                for op in range(4):
                    five = make_pages(tmp / f"four-{r}-{op}", 5, f"O{r}{op}")
                    stacks.append(as_tiff(five, tmp / f"four-{r}-{op}.tif"))
                watches: list[Watch] = []
                threads = []
                barrier = threading.Barrier(4)

                def operator(op: int) -> None:
                    barrier.wait()
                    job_id, committed = submit(service, [stacks[op]], CASE.format(1000 + r * 10 + op),
                                               operator=f"op{op}")
                    watches.append(Watch(service.store, job_id, committed, 5).run())

                for op in range(4):
                    threads.append(threading.Thread(target=operator, args=(op,)))
                    threads[-1].start()
                for t in threads:
                    t.join()
                for w in watches:
                    failures += [f"4ops: {w.status}"] if w.status != "stored" else []
                    four["first verdict"].append(w.first)
                    four["all verdicts"].append(w.all)
                    four["stored"].append(w.final)
            print(f"round {r + 1}/{args.repeat} done", file=sys.stderr)

        if "cli" in parts:
            # sohoa scan of one page: in-process (Prefect started for this one command), then handed to
            # the running service (this process's), as a user at the counter runs it.
            [page] = make_pages(tmp / "cli", 1, "CLI")
            [page2] = make_pages(tmp / "cli2", 1, "CLI2")
            env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PYTHONPATH": str(ROOT)}
            for label, extra, target in (("scan_in_process", ["--in-process"], page), ("scan_via_service", [], page2)):
                t0 = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "cli", "scan", str(target), "--case", CASE.format(9000),
                                       "--json", *extra], cwd=ROOT, env=env, capture_output=True, text=True)
                cli[label] = time.perf_counter() - t0
                if done.returncode:
                    failures.append(f"{label}: exit {done.returncode} {done.stderr[-300:]}")
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "cli", "scan", str(tmp / "missing.jpg"), "--case",
                                   CASE.format(9000)], cwd=ROOT, env=env, capture_output=True, text=True)
            cli["scan_missing_file"] = time.perf_counter() - t0
            cli["pdf"] = sohoa_pdf([page], tmp / "cli.pdf")
        if "watch" in parts:
            # sohoa watch without a Prefect server (its temporary one, started once), two pages in turn.
            watch_pages = [make_pages(tmp / f"watch-{n}", 1, f"W{n}")[0] for n in range(2)]
            env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PYTHONPATH": str(ROOT)}
            try:
                cli |= time_watch(tmp / "watch", watch_pages, CASE.format(9100), env)
            except RuntimeError as exc:
                failures.append(f"watch: {exc}")
            cli["pdf_watch"] = sohoa_pdf(watch_pages[:1], tmp / "watch.pdf")
    finally:
        service.stop()

    med = {k: statistics.median(v) for k, v in rows.items() if v}
    nan = float("nan")

    def ratio(a: str, b: str) -> str:
        return f"{med[a]:.2f} s | {med[b]:.2f} s | {med[a] / med[b]:.2f}×" if a in med and b in med else "| |"

    loads = sampler.stop()
    lines = [
        f"# Desk service benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"{args.repeat} rounds, medians)", "",
        f"Parts: {', '.join(p for p in PARTS if p in parts)}. Load average (1 min) during the run: {loads}.", "",
    ]
    if parts & {"one", "ten", "tenjpg"}:
        lines += [
            "| measure | service | `sohoa pdf` | ratio | target |", "| --- | --- | --- | --- | --- |",
            f"| first page verdict after upload (1 page, 300 dpi) | {med.get('first_verdict_1p', nan):.2f} s "
            "| | | ≤ 1 s |",
            f"| one page: upload complete → stored | {ratio('stored_1p', 'pdf_1p')} | ≤ 1.5× |",
            f"| ten pages (one TIFF): upload complete → stored | {ratio('stored_10p', 'pdf_10p')} | ≤ 1.3× |",
            f"| ten pages (ten JPEG files): upload complete → stored | {ratio('stored_10jpg', 'pdf_10jpg')} | |",
        ]
    if "four" in parts:
        lines += ["", f"Four operators, a 5-page dossier each at once ({len(four['stored'])} uploads):", "",
                  "| step (from upload complete) | p50 | p95 | max |", "| --- | --- | --- | --- |"]
        for step, values in four.items():
            values = [v for v in values if v is not None]
            if values:
                lines.append(f"| {step} | {pct(values, .5):.2f} s | {pct(values, .95):.2f} s | {max(values):.2f} s |")
    if "cli" in parts:
        lines += ["", "`sohoa scan` of one page (a new process each, wall clock):", "",
                  "| command | seconds |", "| --- | --- |",
                  f"| `sohoa scan` in-process (no service; Prefect's temporary server started for it) | "
                  f"{cli.get('scan_in_process', nan):.2f} |",
                  f"| `sohoa scan` handed to the running service | {cli.get('scan_via_service', nan):.2f} |",
                  f"| `sohoa scan` of a missing file (service running) | {cli.get('scan_missing_file', nan):.2f} |",
                  f"| `sohoa pdf` of the same page | {cli.get('pdf', nan):.2f} |"]
    if "watch" in parts:
        lines += ["", "`sohoa watch INBOX` (no Prefect server: its temporary one), one page at a time:", "",
                  "| step | seconds |", "| --- | --- |",
                  f"| start-up until watching (paid once) | {cli.get('watch_start', nan):.2f} |",
                  f"| first page: landing in INBOX → report in done/ | {cli.get('watch_page1', nan):.2f} |",
                  f"| second page: the same | {cli.get('watch_page2', nan):.2f} |",
                  f"| `sohoa pdf` of the first page | {cli.get('pdf_watch', nan):.2f} |"]
    lines += ["", f"Failed or not stored: {', '.join(failures) if failures else 'none'}.",
              *([f"All runs: {', '.join(f'{k}={[round(x, 2) for x in v]}' for k, v in rows.items() if v)}."]
                if any(rows.values()) else []),
              f"Four operators, all runs: {', '.join(f'{k}={[round(x, 2) for x in v if x is not None]}' for k, v in four.items())}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
