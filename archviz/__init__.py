"""archviz: open up PyTorch architectures, starting with the ResNet family.

model -> trace() -> records -> analysis (explain, compare, verify, bench) -> render.
The public names are imported on first use, so `archviz --help` does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archviz._lazy import install
from archviz.errors import ArchvizError, Verdict

_WHERE = {
    "bench": "archviz.benchmark.timing",
    "BenchResult": "archviz.benchmark.records",
    "Comparison": "archviz.analysis.compare",
    "compare": "archviz.analysis.compare",
    "DepthExplanation": "archviz.analysis.explain",
    "explain": "archviz.analysis.explain",
    "Explorer": "archviz.render.explore",
    "explore": "archviz.render.explore",
    "get_model": "archviz.models.registry",
    "list_models": "archviz.models.names",
    "ModuleRecord": "archviz.records",
    "Totals": "archviz.records",
    "Trace": "archviz.records",
    "TraceError": "archviz.tracing.trace",
    "trace": "archviz.tracing.trace",
    "VerifyResult": "archviz.checkpoints.verify",
    "verify": "archviz.checkpoints.verify",
}

__all__ = [
    "ArchvizError",
    "BenchResult",
    "Comparison",
    "DepthExplanation",
    "Explorer",
    "ModuleRecord",
    "Totals",
    "Trace",
    "TraceError",
    "Verdict",
    "VerifyResult",
    "bench",
    "compare",
    "explain",
    "explore",
    "get_model",
    "list_models",
    "trace",
    "verify",
]
__version__ = "0.1.0"
install(__name__, _WHERE)

if TYPE_CHECKING:  # what the type checker and IDEs see
    from archviz.analysis.compare import Comparison, compare
    from archviz.analysis.explain import DepthExplanation, explain
    from archviz.benchmark.records import BenchResult
    from archviz.benchmark.timing import bench
    from archviz.checkpoints.verify import VerifyResult, verify
    from archviz.models import get_model, list_models
    from archviz.records import ModuleRecord, Totals, Trace
    from archviz.render.explore import Explorer, explore
    from archviz.tracing.trace import TraceError, trace
