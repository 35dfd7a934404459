"""The agency's retention schedule: document kind or procedure → retention period (pure rules)."""
from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.record import PERMANENT, MetadataError, longer, parse_retention

DEFAULT_RULES = Path(__file__).with_name("retention_default.json")


def _key(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().casefold()


@dataclass(frozen=True)
class RetentionRules:
    """Periods by document kind and by procedure, and the default for anything else."""

    default: str
    kinds: dict[str, str] = field(default_factory=dict)
    procedures: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "") -> RetentionRules:
        """Check every period; a wrong one names its entry."""
        try:
            default = parse_retention(data.get("default", "10"))
            kinds = {k: parse_retention(v) for k, v in (data.get("kinds") or {}).items()}
            procedures = {k: parse_retention(v) for k, v in (data.get("procedures") or {}).items()}
        except MetadataError as exc:
            raise MetadataError(f"Bảng thời hạn {source}: {exc.message_vi}", f"retention rules {source}: {exc}") from exc
        return cls(default, kinds, procedures, source)

    @classmethod
    def load(cls, path: Path | None) -> RetentionRules:
        """The agency's file when it exists, else the schedule shipped with sohoa."""
        chosen = path if path is not None and path.is_file() else DEFAULT_RULES
        try:
            data = json.loads(chosen.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MetadataError(f"Không đọc được bảng thời hạn lưu trữ {chosen}.",
                                f"cannot read retention rules {chosen}: {exc}") from exc
        return cls.from_dict(data, source=str(chosen))

    def period_for(self, kinds: list[str], procedure: str | None) -> tuple[str, str]:
        """(period, why): the longest period any of the case's kinds or its procedure asks for."""
        found: str | None = None
        why: list[str] = []
        table = {_key(k): (k, v) for k, v in self.kinds.items()}
        for kind in kinds:
            hit = table.get(_key(kind)) if kind else None
            if hit:
                found = longer(found, hit[1])
                why.append(f"kind:{hit[0]}")
        if procedure:
            procs = {_key(k): (k, v) for k, v in self.procedures.items()}
            hit = procs.get(_key(procedure))
            if hit:
                found = longer(found, hit[1])
                why.append(f"procedure:{hit[0]}")
        if found is None:
            return self.default, "default"
        return found, ",".join(why)

    def rows(self) -> list[tuple[str, str, str]]:
        """(what, name, period) for printing."""
        out = [("mặc định (default)", "", self.default)]
        out += [("loại văn bản (kind)", k, v) for k, v in sorted(self.kinds.items())]
        out += [("thủ tục (procedure)", k, v) for k, v in sorted(self.procedures.items())]
        return out


__all__ = ["DEFAULT_RULES", "PERMANENT", "RetentionRules"]
