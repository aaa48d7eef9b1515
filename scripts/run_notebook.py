#!/usr/bin/env python3
"""Executes a Jupyter notebook's code cells in order, in one namespace, with plain Python (no Jupyter):
CI's check that docs/python-example.ipynb runs.   usage: python scripts/run_notebook.py NOTEBOOK.ipynb

A cell's last expression is printed, as a notebook shows it; a failing cell stops the run with its
traceback and a non-zero exit.
"""

import ast
import json
import sys


def main(path: str) -> None:
    nb = json.load(open(path, encoding="utf-8"))
    ns: dict = {"__name__": "__main__"}
    cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    for i, cell in enumerate(cells, 1):
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        tree = ast.parse(src, filename=f"{path} cell {i}")
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body = tree.body[:-1]
        exec(compile(tree, f"{path} cell {i}", "exec"), ns)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), f"{path} cell {i}", "eval"), ns)
            if value is not None:
                print(repr(value))
    print(f"{path}: {len(cells)} code cells ran")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
