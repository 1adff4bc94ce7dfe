"""archviz: open up PyTorch architectures, starting with the ResNet family.

model -> trace() -> records -> analysis (explain, compare, verify, bench) -> render.
"""

from archviz.bench import bench
from archviz.bench_records import BenchResult
from archviz.errors import ArchvizError
from archviz.models import get_model, list_models

__all__ = ["ArchvizError", "BenchResult", "bench", "get_model", "list_models"]
__version__ = "0.1.0"
