"""Scenario gallery: pictures of real connections, each a small scripted story on the simulated
network that shows one thing TCP does and checks that it did it.

``synack scenarios list`` / ``run NAME`` / ``run --all --out DIR`` (``cli.py``); the gallery
page ``docs/gallery.md`` comes from ``python -m synack.scenarios.gallery --out docs/gallery``.
The stories live in one module per group (``opening``, ``closing``, ``data``, ``loss``,
``isn``, ``synflood``), the bench they run on in ``lab``, the table and runner in ``registry``.
"""
