"""Renderers: records in, text/HTML/SVG out. Nothing here runs a model."""
