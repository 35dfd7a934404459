"""The Jinja2 templates of the pages, loaded once; the routers and the app's error pages render them."""
from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
