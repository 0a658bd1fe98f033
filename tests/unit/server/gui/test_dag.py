"""The template DAG's layout: layers by longest path, cycles broken, edges between boxes."""

from __future__ import annotations

from herdsman.server.gui.dag import DagLayout, layout
from herdsman.server.queries.workflows import TemplateEdge, TemplateRow


def template(array_id: int, tasks: int) -> TemplateRow:
    return TemplateRow(array_id, f"t{array_id}", 10, {"D": tasks}, tasks)


def columns(found: DagLayout) -> dict[int, float]:
    return {node.array_id: node.x + node.width / 2 for node in found.nodes}


def test_layers_follow_the_longest_path() -> None:
    # 1 -> 2 -> 3 and 1 -> 3: 3 sits after 2, not beside it.
    found = layout(
        [template(1, 1), template(2, 10), template(3, 1000)],
        [TemplateEdge(1, 2, 10), TemplateEdge(2, 3, 1000), TemplateEdge(1, 3, 5)],
    )
    x = columns(found)
    assert x[1] < x[2] < x[3]
    widths = {node.array_id: node.width for node in found.nodes}
    assert widths[1] < widths[2] < widths[3]  # sized by task count
    assert len(found.edges) == 3 and all(edge.path.startswith("M") for edge in found.edges)
    assert found.width >= max(node.x + node.width for node in found.nodes)


def test_a_cycle_between_templates_still_places_every_template() -> None:
    found = layout(
        [template(1, 1), template(2, 1), template(3, 1)],
        [TemplateEdge(1, 2, 1), TemplateEdge(2, 1, 1), TemplateEdge(2, 3, 1)],
    )
    assert sorted(node.array_id for node in found.nodes) == [1, 2, 3]
    assert len(found.edges) == 3


def test_templates_without_edges_stack_in_one_column() -> None:
    found = layout([template(1, 0), template(2, 0)], [])
    x = columns(found)
    assert x[1] == x[2]
    ys = sorted(node.y for node in found.nodes)
    assert ys[1] > ys[0]
    assert found.edges == []
    assert layout([], []).nodes == []
