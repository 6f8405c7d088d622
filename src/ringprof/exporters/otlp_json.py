"""OTLP profiles in the OTLP/JSON encoding (``.otlp.json``); see :mod:`ringprof.exporters.otlp`."""

from __future__ import annotations

from .otlp import render_json as render

EXTENSIONS: tuple[str, ...] = (".otlp.json",)

__all__ = ["EXTENSIONS", "render"]
