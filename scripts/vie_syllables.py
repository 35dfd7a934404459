"""Regenerate pipeline/data/vie_syllables.txt from the vie traineddata's word list.

Needs the tesseract-ocr package's combine_tessdata and dawg2wordlist. Usage:
``python scripts/vie_syllables.py [/usr/share/tesseract-ocr/5/tessdata/vie.traineddata]``
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.syllables import DATA, well_formed  # noqa: E402


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/tesseract-ocr/5/tessdata/vie.traineddata")
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "vie.")
        subprocess.run(["combine_tessdata", "-u", str(source), prefix], check=True, capture_output=True)
        words = Path(tmp) / "words.txt"
        subprocess.run(["dawg2wordlist", prefix + "lstm-unicharset", prefix + "lstm-word-dawg", str(words)],
                       check=True, capture_output=True)
        found = {s for line in words.read_text("utf-8").splitlines()
                 for s in unicodedata.normalize("NFC", line).lower().split() if s.isalpha() and well_formed(s)}
    DATA.write_text("\n".join(sorted(found)) + "\n", encoding="utf-8")
    print(f"{len(found)} syllables -> {DATA}")


if __name__ == "__main__":
    main()
