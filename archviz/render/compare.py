"""A Comparison as a DataFrame, a human table (text or Markdown), and each CLI format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

import pandas as pd
from tabulate import tabulate

from archviz.errors import ArchvizError
from archviz.options import FORMATS
from archviz.render.escape import md_escape, term_safe
from archviz.render.units import chw, nbytes, si

if TYPE_CHECKING:
    from archviz.analysis.compare import Comparison, ComparisonRow
    from archviz.analysis.llm import LLMFacts


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
        if row.llm is not None:
            record.update(_llm_record(row.llm))
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
    table = tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)
    llms = [row for row in comparison.rows if row.llm is not None]
    if not llms:
        return table
    html = tablefmt == "html"
    llm = tabulate(llm_rows(llms, safe), headers="firstrow", tablefmt=tablefmt,
                   disable_numparse=True)  # fmt: skip
    blocks = tabulate(block_rows(llms, safe), headers=BLOCK_COLUMNS, tablefmt=tablefmt,
                      disable_numparse=True)  # fmt: skip
    titles = ("<h3>{}</h3>", "{}") if html else ("{}:", "{}")
    parts = [table, titles[0].format("Transformer figures"), llm,
             titles[0].format("Repeated blocks"), blocks]  # fmt: skip
    return "\n\n".join(parts)


BLOCK_COLUMNS = ("Model", "Blocks", "Where", "Identical", "Params each", "FLOPs each", "Share")


def llm_rows(rows: list[ComparisonRow], safe: Callable[[str], str]) -> list[list[str]]:
    """One column per model, one row per figure (they read down like a model card)."""
    figures: list[tuple[str, Callable[[LLMFacts], str]]] = [
        ("Parameters (embedding)", lambda f: si(f.embedding_params)),
        ("Parameters (non-embedding)", lambda f: si(f.non_embedding_params)),
        ("FLOPs per token", lambda f: si(f.flops_per_token)),
        ("KV cache per token", lambda f: _opt(f.kv_cache_bytes_per_token, nbytes)),
        ("dtype", lambda f: f.dtype),
        ("Layers", lambda f: _layers(f)),
        ("Heads / KV heads", lambda f: f"{_opt(f.heads)} / {_opt(f.kv_heads)}"),
        ("Head dim", lambda f: _opt(f.head_dim)),
        ("Hidden / intermediate", lambda f: f"{_opt(f.hidden)} / {_opt(f.intermediate)}"),
        ("Vocabulary", lambda f: _opt(f.vocab)),
        ("Attention", lambda f: f.attention),
        ("Experts (top-k)", lambda f: f"{f.experts} (top-{f.top_k})" if f.experts else "-"),
    ]
    head = ["", *(safe(r.name) for r in rows)]
    tokens = ["Tokens traced", *(f"{r.llm.tokens:,}" for r in rows if r.llm)]
    return [
        head,
        tokens,
        *([label, *(cell(r.llm) for r in rows if r.llm)] for label, cell in figures),
    ]


def block_rows(rows: list[ComparisonRow], safe: Callable[[str], str]) -> list[list[str]]:
    """Each model's repeated blocks: how many, where, what one of them holds and does."""
    out = []
    for row in rows:
        assert row.llm is not None
        for s in row.llm.blocks:
            share = f"{s.params / row.params:.0%}"
            out.append([safe(row.name), safe(s.text), safe(s.where), f"{s.identical}/{s.count}",
                        si(s.params_each), si(s.flops_each), share])  # fmt: skip
    return out


def _llm_record(f: LLMFacts) -> dict[str, object]:
    """The raw figures as DataFrame columns (blocks as one 'N x Type' string)."""
    record = {k: v for k, v in asdict(f).items() if k not in ("blocks", "layers")}
    record["num_hidden_layers"] = f.layers  # "layers" is a ResNet's block list here
    record["blocks"] = " + ".join(s.text for s in f.blocks)
    return record


def _layers(f: LLMFacts) -> str:
    if f.decoder_layers is not None:
        return f"{_opt(f.layers)} + {f.decoder_layers} (encoder + decoder)"
    return _opt(f.layers)


def _opt(value: int | None, show: Callable[[int], str] = str) -> str:
    return "-" if value is None else show(value)


def _stage_cells(shapes: tuple, stages: list[str]) -> list[str]:
    """One output shape per stage column; "-" where a model has no such stage."""
    found = dict(shapes)
    return [chw(found[s]) if s in found else "-" for s in stages]
