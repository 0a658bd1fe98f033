"""The walls between herdsman's parts, and no import cycles among its modules.

The walls are import-linter contracts in ``pyproject.toml`` (docs/architecture.md, "Walls"):
core imports nothing else of herdsman; the client, the distributor, the plugins and the worker
reach the server over HTTP only; the server imports none of them; the server's layers import
only downwards (api > domain > queries > database); the distributor imports no plugin and no
worker module; the worker needs only core. This test runs them, so a broken wall fails the
normal test run, its report naming the chain of imports that broke one.

A cycle is found on the graph of every herdsman module, imports inside functions included: a
deferred import is still a dependency, and a cycle through one only waits for the call that
closes it. Imports under ``TYPE_CHECKING`` are left out (they only name types and never run:
the authoring classes name each other in annotations, a Task its TaskTemplate and back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import grimp
import pytest
from importlinter import api  # sets import-linter up, as its command does
from importlinter.application.use_cases import lint_imports

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("herdsman", exclude_type_checking_imports=True, cache_dir=None)


def strongly_connected(
    nodes: Iterable[str], successors: Callable[[str], Iterable[str]]
) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted.

    Iterative, so a long chain of imports cannot exhaust Python's recursion limit.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(successors(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(successors(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_the_walls_hold() -> None:
    contracts = api.read_configuration(str(PYPROJECT))["contracts_options"]

    kept = lint_imports(str(PYPROJECT), cache_dir=None, no_logo=True)

    assert len(contracts) >= 6
    assert kept, "a wall is broken: the report above names the contract and the imports"


def test_core_imports_nothing_else_of_herdsman(graph: grimp.ImportGraph) -> None:
    outside = {
        (module, imported)
        for module in graph.modules
        if module.startswith("herdsman.core")
        for imported in graph.find_modules_directly_imported_by(module)
        if not imported.startswith("herdsman.core")
    }

    assert not outside  # the root package too: it imports the client's names lazily


def test_no_herdsman_modules_import_each_other_in_a_cycle(graph: grimp.ImportGraph) -> None:
    cycles = strongly_connected(graph.modules, graph.find_modules_directly_imported_by)

    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}

    found = strongly_connected(edges, lambda node: edges[node])

    assert found == [["a", "b", "c"]]
    chain = {str(n): {str(n + 1)} for n in range(5000)} | {"5000": {"0"}}
    (long_cycle,) = strongly_connected(chain, lambda node: chain[node])
    assert len(long_cycle) == 5001
