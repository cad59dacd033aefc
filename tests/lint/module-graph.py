#!/usr/bin/env python3
"""Checks that imports between the crate's modules run one way: no two top-level modules import
each other, directly or round a loop; and no source file is over 400 lines. Prints the graph
(`--dot` prints it as Graphviz for docs/). Part of the test command."""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parents[2] / "src"
MAX_LINES = 400


def top_module(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def imports(path: pathlib.Path, own: str) -> set:
    text = path.read_text()
    found = set(re.findall(r"\bcrate::([a-z_]+)", text))
    # Items re-exported at the crate root (crate::serve) live in app.
    roots = {"serve": "app", "launch": "app", "StartError": "app", "Settings": "config"}
    return {roots.get(m, m) for m in found} - {own}


def main() -> int:
    graph, too_long = {}, []
    for path in sorted(SRC.rglob("*.rs")):
        if path.name in ("main.rs", "lib.rs"):
            continue
        module = top_module(path)
        graph.setdefault(module, set()).update(imports(path, module))
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            too_long.append(f"{path.relative_to(SRC.parent)}: {lines} lines")
    if "--dot" in sys.argv:
        print("digraph modules {\n  rankdir=TB;")
        for module, deps in sorted(graph.items()):
            for dep in sorted(deps):
                print(f"  {module} -> {dep};")
        print("}")
        return 0
    for module, deps in sorted(graph.items()):
        print(f"{module:10} -> {', '.join(sorted(deps)) or '(nothing)'}")
    loops = []

    def visit(node, trail):
        for dep in graph.get(node, ()):
            if dep in trail:
                loops.append(" -> ".join(trail[trail.index(dep):] + [dep]))
            elif dep in graph:
                visit(dep, trail + [dep])

    for module in graph:
        visit(module, [module])
    problems = sorted(set(loops)) + too_long
    for problem in problems:
        print("module graph:", problem, file=sys.stderr)
    print("module graph: " + ("FAILED" if problems else "no import loops, no file over 400 lines"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
