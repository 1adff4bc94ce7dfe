"""Llama-3-70B from its config: archviz's whole CLI trace against the bare minimum.

The bare minimum is what any tool must do to see the model: build it from its config on
the meta device and run one forward pass there (no hooks, no counting). The CLI trace is
`archviz trace CONFIG --input 1x128`, run in a fresh process, so its time includes the
import of torch and transformers and its peak RSS is the whole process's. Both are the
best of `--repeats` fresh processes. The target: at most 2x the bare time, under 2 GiB.

    python benchmarks/llm_scale.py [--repeats 3] [--seq 128]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Llama-3-70B's config.json (meta-llama/Meta-Llama-3-70B), as the model card publishes it.
LLAMA3_70B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
PUBLISHED_PARAMS = 70_553_706_496

# One fresh process: build from the config on meta, one bare forward, print the seconds.
BARE = """
import json, sys, time, resource
start = time.perf_counter()
import torch, transformers
config = transformers.AutoConfig.for_model(**json.load(open(sys.argv[1])))
with torch.device("meta"):
    model = transformers.LlamaForCausalLM._from_config(config)
with torch.no_grad():
    model(input_ids=torch.empty(1, int(sys.argv[2]), dtype=torch.long, device="meta"))
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "rss": rss,
                  "params": sum(p.numel() for p in model.parameters())}))
"""


def bare(config: Path, seq: int) -> dict:
    out = subprocess.run([sys.executable, "-c", BARE, str(config), str(seq)],
                         check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def cli(config: Path, seq: int) -> dict:
    """The CLI in a fresh process; its peak RSS from a wrapper that reads its own."""
    wrapper = (
        "import resource, sys, time, runpy, json\n"
        "start = time.perf_counter()\n"
        "sys.argv = ['archviz', 'trace', sys.argv[1], '--input', '1x' + sys.argv[2],"
        " '--format', 'json', '-o', sys.argv[3]]\n"
        "try:\n    runpy.run_module('archviz', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print(json.dumps({'seconds': time.perf_counter() - start,"
        " 'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "trace.json"
        command = [sys.executable, "-c", wrapper, str(config), str(seq), str(target)]
        out = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["params"] = json.loads(target.read_text())["totals"]["params"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps(LLAMA3_70B))
        bares = [bare(config, args.seq) for _ in range(args.repeats)]
        clis = [cli(config, args.seq) for _ in range(args.repeats)]
    b = min(bares, key=lambda r: r["seconds"])
    c = min(clis, key=lambda r: r["seconds"])
    gib = 2**30
    print(f"Llama-3-70B from its config, input 1x{args.seq}, best of {args.repeats} processes")
    print(
        f"  bare build + one meta forward: {b['seconds']:.2f} s, peak RSS {b['rss'] / gib:.2f} GiB"
    )
    print(
        f"  archviz trace (whole CLI):     {c['seconds']:.2f} s, peak RSS {c['rss'] / gib:.2f} GiB"
    )
    print(f"  ratio: {c['seconds'] / b['seconds']:.2f}x (target <= 2x); RSS target < 2 GiB")
    print(f"  parameters: {c['params']:,} (published {PUBLISHED_PARAMS:,}; bare {b['params']:,})")


if __name__ == "__main__":
    main()
