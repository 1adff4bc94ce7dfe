"""Renderers: records in, text/SVG out; nothing here runs a model."""
