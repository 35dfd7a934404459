"""The ``sohoa`` command line: the administrators', scripts' and scanning desk's surface.

It parses arguments, calls the same functions as the web app (``flows``, ``storage``, ``models``)
and renders their results; it holds no query, download or policy logic of its own.
"""
