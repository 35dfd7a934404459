"""Regenerate pipeline/data/vie_bigrams.txt.gz from Tesseract's langdata word bigrams.

The source is ``vie/vie.word.bigrams`` of https://github.com/tesseract-ocr/langdata (Apache License
2.0, the data Tesseract's own ``vie`` model was built from): Vietnamese word pairs, the commonest
first. Kept: pairs of two syllables of pipeline/data/vie_syllables.txt, lower case, NFC, each once,
in the source's order (a pair's line number is its rank). Usage:
``python scripts/vie_bigrams.py path/to/langdata/vie/vie.word.bigrams``
"""
from __future__ import annotations

import gzip
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.context import DATA  # noqa: E402
from pipeline.syllables import syllables  # noqa: E402

HEADER = ("# Vietnamese syllable pairs, commonest first, from vie/vie.word.bigrams of\n"
          "# https://github.com/tesseract-ocr/langdata (Apache License 2.0, pipeline/data/LICENSE-langdata.txt);\n"
          "# see scripts/vie_bigrams.py\n")


def main() -> None:
    known = syllables()
    pairs: dict[str, None] = {}
    for line in Path(sys.argv[1]).read_text("utf-8").splitlines():
        words = unicodedata.normalize("NFC", line).strip().lower().split()
        if len(words) == 2 and all(w in known for w in words):
            pairs.setdefault(" ".join(words))
    with gzip.open(DATA, "wt", encoding="utf-8", compresslevel=9) as out:
        out.write(HEADER + "\n".join(pairs) + "\n")
    print(f"{len(pairs)} pairs -> {DATA}")


if __name__ == "__main__":
    main()
