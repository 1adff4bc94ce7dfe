"""The benchmark's records: plain frozen dataclasses that round-trip through JSON.

They hold seconds, bytes and counts as raw numbers; milliseconds and "MB" are the
renderer's job. `bench.py` fills them; the CLI, the report and the chart only read them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from archviz.errors import ArchvizError

FILE_KIND = "archviz-bench"
FILE_VERSION = 1
# A figure is flagged when the run-to-run spread says it is not to be trusted as is.
NOISY_IQR = 0.20  # interquartile range above this fraction of the median
STAGE_SUM_TOLERANCE = 0.25  # stages timed alone summing this far from the whole model
QUICK_LABEL = "quick: rough figures (a few calls per row after a warm-up, no stage breakdown)"


@dataclass(frozen=True)
class StageTiming:
    """One part of the model (stem, a stage, head) timed alone on its real input."""

    part: str
    input_shape: tuple[int, ...]
    median_s: float
    iqr_s: float
    runs: int


@dataclass(frozen=True)
class BenchRow:
    """One (model, device, batch, dtype) measurement, or the reason there is none.

    `status` is "ok" or "not available" (then the figures are None and `note` says why).
    `note` also labels measured rows that need a caveat, e.g. bfloat16 without native
    CPU support. `peak_memory_bytes` is growth over the pre-forward baseline: CUDA's
    `max_memory_allocated`, or on CPU the process's peak resident set.
    """

    model: str
    device: str
    batch: int
    dtype: str
    channels_last: bool
    threads: int
    status: str
    note: str = ""
    median_s: float | None = None
    iqr_s: float | None = None
    runs: int = 0
    blocks: int = 0
    throughput: float | None = None  # images per second
    flops: int | None = None  # one forward at this batch; 2 x MACs for conv/linear
    gflops_per_s: float | None = None
    peak_memory_bytes: int | None = None
    speedup_vs_cpu: float | None = None  # on accelerator rows where CPU also ran
    stages: tuple[StageTiming, ...] = ()
    stages_note: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def stages_sum_s(self) -> float | None:
        return sum(s.median_s for s in self.stages) if self.stages else None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Why this row's figures may not hold: a wide spread, or stages that do not add up."""
        found = []
        if self.median_s and self.iqr_s is not None and self.iqr_s > NOISY_IQR * self.median_s:
            found.append(f"noisy: IQR {self.iqr_s / self.median_s:.0%} of median")
        total = self.stages_sum_s
        if self.median_s and total is not None:
            off = total / self.median_s - 1
            if abs(off) > STAGE_SUM_TOLERANCE:
                found.append(f"stage sum {off:+.0%} vs whole model")
        return tuple(found)


@dataclass(frozen=True)
class MachineInfo:
    """Where the figures came from: they mean little without it."""

    cpu_model: str
    cpu_cores: int
    physical_cores: int | None
    torch_threads: int
    cpu_capability: str
    cpu_bf16_native: bool
    gpu_name: str | None
    torch_version: str
    cuda_version: str | None
    python_version: str
    platform: str


@dataclass(frozen=True)
class BenchResult:
    """All rows of one `bench()` call, the machine, and the settings that shaped them."""

    rows: tuple[BenchRow, ...]
    machine: MachineInfo
    image_size: tuple[int, int]
    min_run_time: float
    quick: bool = False  # `bench(quick=True)`: a few calls per row, rough figures

    @property
    def label(self) -> str:
        """What every rendering of quick figures says first ("" for a full run)."""
        return QUICK_LABEL if self.quick else ""

    def to_json(self) -> str:
        """JSON text with a kind/version header, so `load` can refuse other files."""
        body = {"kind": FILE_KIND, "version": FILE_VERSION, **asdict(self)}
        if self.quick:
            body["label"] = self.label  # for a reader of the file; `from_json` ignores it
        return json.dumps(body, indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        from archviz.render.atomic import write_atomic

        write_atomic(path, self.to_json())

    @classmethod
    def from_json(cls, text: str) -> BenchResult:
        try:
            data = json.loads(text)
            if data.get("kind") != FILE_KIND:
                raise ValueError(f"not an {FILE_KIND} file (kind={data.get('kind')!r})")
            return cls(
                rows=tuple(_row(r) for r in data["rows"]),
                machine=MachineInfo(**data["machine"]),
                image_size=_pair(data["image_size"]),
                min_run_time=float(data["min_run_time"]),
                quick=bool(data.get("quick", False)),  # files saved before it was recorded
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ArchvizError(f"cannot read benchmark results: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> BenchResult:
        """Read a file written by `save` (or `archviz bench --save`)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ArchvizError(f"cannot read {path}: {exc.strerror}") from None
        return cls.from_json(text)

    def to_dataframe(self):
        """One row per BenchRow; raw units (s, B, images/s); one `<part>_s` column per stage."""
        import pandas as pd

        records = []
        for row in self.rows:
            record = {f.name: getattr(row, f.name) for f in fields(row) if f.name != "stages"}
            record["stages_sum_s"] = row.stages_sum_s
            record.update({f"{s.part}_s": s.median_s for s in row.stages})
            records.append(record)
        return pd.DataFrame.from_records(records)


def _row(data: dict) -> BenchRow:
    stages = tuple(
        StageTiming(**{**s, "input_shape": tuple(s["input_shape"])}) for s in data["stages"]
    )
    return BenchRow(**{**data, "stages": stages})


def _pair(value: list) -> tuple[int, int]:
    height, width = value
    return int(height), int(width)
