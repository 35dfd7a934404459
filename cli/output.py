"""How several ``sohoa`` commands answer: JSON for scripts, the stored-document mark, the log file."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

LOG_FILE = "logs/sohoa.log"


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON for scripts, Vietnamese letters kept as they are."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def document_mark(report: dict[str, Any]) -> str:
    """✓ for a stored document, unless a page must be rescanned (e.g. no readable text): then a warning."""
    rescan = [p["number"] for p in report.get("pages", [])
              if any(i.get("severity") == "rescan" for i in p.get("issues", []))]
    # A stored document with a page to rescan is not a success the operator can walk away from.
    return f"! cần quét lại trang {', '.join(map(str, rescan))} (rescan needed) —" if rescan else "✓"


def log_file() -> Path:
    """Where Prefect's and the flows' log lines go without --verbose."""
    from storage.config import default_data_dir

    return Path(os.environ.get("SOHOA_DATA_DIR") or default_data_dir()).expanduser().resolve() / LOG_FILE
