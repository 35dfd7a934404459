"""The web surface: pages for case handlers and the /api/v1 JSON API (see web/app.py)."""
