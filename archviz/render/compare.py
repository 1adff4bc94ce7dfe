"""A Comparison as a DataFrame, a human table (text or Markdown), and each CLI format."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from tabulate import tabulate

from archviz.errors import ArchvizError
from archviz.options import FORMATS
from archviz.render.escape import md_escape, term_safe
from archviz.render.units import chw, nbytes, si

if TYPE_CHECKING:
    from archviz.analysis.compare import Comparison


def comparison_dataframe(comparison: Comparison) -> pd.DataFrame:
    """Raw integers; shapes as '256x56x56' strings; one column per stage."""
    rows = []
    for row in comparison.rows:
        record = {
            "name": row.name,
            "block": row.block,
            "layers": "[" + ", ".join(map(str, row.layers)) + "]",
            "depth": row.depth,
            "params": row.params,
            "macs": row.macs,
            "flops": row.flops,
            "macs_stride_in_1x1": row.macs_stride_in_1x1,
            "paper_table1_gmacs": row.paper_table1_gmacs,
            "activation_bytes": row.activation_bytes,
        }
        record.update({f"{stage}_output": chw(s) for stage, s in row.stage_shapes})
        record.update({f"{part}_macs": macs for part, macs in row.stage_macs})
        rows.append(record)
    return pd.DataFrame(rows)


def render_comparison(comparison: Comparison, fmt: str) -> str:
    """One of archviz.options.FORMATS["compare"] as text, for the CLI."""
    if fmt == "json":
        return comparison.to_json()
    if fmt == "csv":
        return comparison.to_dataframe().to_csv(index=False)
    if fmt == "markdown":
        return comparison_table(comparison, "github")
    if fmt == "table":
        return comparison_table(comparison, "simple")
    raise ArchvizError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS['compare'])}")


def comparison_table(comparison: Comparison, tablefmt: str) -> str:
    """The readable view: humanised units, stage output shapes, the paper's figures."""
    n = comparison.input_size[0]
    stages = list(dict.fromkeys(s for row in comparison.rows for s, _ in row.stage_shapes))
    headers = [
        "Model",
        "Block",
        "Layers",
        "Depth",
        "Params",
        "MACs",
        "FLOPs",
        "MACs (paper stride)",
        "Table 1",
        *stages,  # ResNets' stages; "-" for a model without them
        f"Activations (batch {n})",
    ]
    safe = md_escape if tablefmt in ("github", "pipe") else term_safe
    body = [
        [
            safe(row.name),
            row.block or "-",
            "[" + ", ".join(map(str, row.layers)) + "]" if row.layers else "-",
            str(row.depth),
            si(row.params),
            si(row.macs),
            si(row.flops),
            si(row.macs_stride_in_1x1) if row.macs_stride_in_1x1 is not None else "-",
            f"{row.paper_table1_gmacs} G" if row.paper_table1_gmacs else "-",
            *_stage_cells(row.stage_shapes, stages),
            nbytes(row.activation_bytes),
        ]
        for row in comparison.rows
    ]
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def _stage_cells(shapes: tuple, stages: list[str]) -> list[str]:
    """One output shape per stage column; "-" where a model has no such stage."""
    found = dict(shapes)
    return [chw(found[s]) if s in found else "-" for s in stages]
