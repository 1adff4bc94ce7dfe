"""Import cycles between archviz's files, lazy imports inside functions included.

Reads every `import archviz...` / `from archviz... import ...` in archviz/ (those under
`if TYPE_CHECKING:` are skipped: they never run). Prints each cycle; exit 1 if any.
Also prints the direction rules of STYLE.md that an import breaks.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "archviz"
RULES = [  # (importer prefix, forbidden imported prefix)
    ("archviz.tracing", "archviz.render"),
    ("archviz.tracing", "archviz.analysis"),
    ("archviz.analysis", "archviz.render"),
    ("archviz.render", "archviz.cli"),
    ("archviz.analysis", "archviz.cli"),
    ("archviz.tracing", "archviz.cli"),
    ("archviz.models", "archviz.cli"),
    ("archviz.checkpoints", "archviz.cli"),
    ("archviz.benchmark", "archviz.cli"),
    ("archviz.records", "archviz.render"),
]
# Notebook conveniences that call a renderer lazily (STYLE.md allows them; the dependency
# still counts, so each is named here). Nothing in render/ imports these modules back at
# run time, so they make no cycle; the CLI and the report call the renderers directly.
CONVENIENCES = {
    ("archviz.records", "archviz.render.tables"),  # Trace.summary(), Trace._repr_html_()
    ("archviz.analysis.explain", "archviz.render.explain"),  # DepthExplanation.text(), HTML
    ("archviz.analysis.compare", "archviz.render.compare"),  # Comparison.to_dataframe()
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(path: Path, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for s in node.body for n in ast.walk(s))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name.startswith("archviz"):
                target = resolve(name, modules)
                if target and target != "archviz":
                    found.add(target)
    return found


def main() -> int:
    files = {module_name(p): p for p in PKG.rglob("*.py") if "vendor" not in p.parts}
    graph = {m: imports_of(p, set(files)) - {m} for m, p in files.items()}
    cycles: set[tuple[str, ...]] = set()
    for start in sorted(graph):
        stack = [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    i = path.index(min(path))
                    cycles.add(path[i:] + path[:i])
                elif nxt not in path and nxt > start and len(path) < 8:
                    stack.append((nxt, (*path, nxt)))
    for cycle in sorted(cycles):
        print("cycle:", " -> ".join((*cycle, cycle[0])))
    broken = [
        (m, t)
        for m, targets in graph.items()
        for t in targets
        for a, b in RULES
        if (m == a or m.startswith(a + "."))
        and (t == b or t.startswith(b + "."))
        and (m, t) not in CONVENIENCES
    ]
    for m, t in sorted(broken):
        print(f"rule: {m} imports {t}")
    return 1 if cycles or broken else 0


if __name__ == "__main__":
    sys.exit(main())
