"""A watchdog that ends what a ``sohoa`` command started when that command dies, even by ``kill -9``.

``sohoa scan`` starts Prefect's temporary API server (a uvicorn subprocess) and Tesseract
processes. Killed with SIGKILL, the command gets no chance to stop them: the server held its
port for 10+ minutes. Children on Linux can ask to die with their parent (PR_SET_PDEATHSIG),
but Prefect and pytesseract start theirs without such a hook. So the command starts this small
watchdog first (``start()``): it is told of the command's death by the end of a pipe only the
command holds (the kernel closes it however the command ends), keeps a list of the command's
descendants from /proc every 0.2 s while it runs, and when the pipe closes sends SIGTERM, then
SIGKILL after 3 s, to each listed process that is still the same process (same start time).
Linux only (/proc); elsewhere ``start()`` does nothing.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

POLL = 0.2
GRACE = 3.0


def start() -> subprocess.Popen | None:
    """Start the watchdog for this process; it ends by itself when this process ends."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self"):
        return None
    try:
        return subprocess.Popen([sys.executable, "-S", __file__, str(os.getpid())], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                close_fds=True)
    except OSError:
        return None


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a process, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid -> start time."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st:
                children.setdefault(st[0], []).append(int(name))
                starts[int(name)] = st[1]
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out[child] = starts[child]
                todo.append(child)
    return out


def _watch(parent: int) -> None:
    import selectors

    me = os.getpid()
    seen: dict[int, int] = {}
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ)
    while True:
        seen.update((p, s) for p, s in descendants(parent).items() if p != me)
        if sel.select(timeout=POLL) and not os.read(sys.stdin.fileno(), 4096):
            break  # the pipe closed: the command has ended, however it ended
    alive = {p: s for p, s in seen.items() if (st := _stat(p)) and st[1] == s}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + GRACE
        while alive and time.monotonic() < deadline:
            alive = {p: s for p, s in alive.items() if (st := _stat(p)) and st[1] == s}
            time.sleep(0.1)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the command, not its watchdog
    _watch(int(sys.argv[1]))
