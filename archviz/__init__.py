"""archviz: open up PyTorch architectures, starting with the ResNet family.

model -> trace() -> records -> analysis (explain, compare, verify, bench) -> render.
"""

from archviz.bench import bench
from archviz.bench_records import BenchResult
from archviz.compare import Comparison, compare
from archviz.errors import ArchvizError
from archviz.explain import DepthExplanation, explain
from archviz.models import get_model, list_models
from archviz.records import ModuleRecord, Totals, Trace
from archviz.render.explore import Explorer, explore
from archviz.trace import TraceError, trace
from archviz.verify import VerifyResult, verify

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
