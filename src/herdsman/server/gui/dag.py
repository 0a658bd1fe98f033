"""A workflow's DAG at the level of its task templates, laid out for an inline SVG.

Nodes are templates (sized by their task count, a stacked bar of their statuses inside),
edges the task edges summed by template (:func:`herdsman.server.queries.workflows.
template_edges`). Layers go left to right by the longest path from a template with no
upstream; a cycle between templates (possible: tasks of A may need tasks of B and others of B
tasks of A) is broken where it closes. Pure, so the layout is tested without a server.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from herdsman.server.gui.status import Segment, bar
from herdsman.server.queries.workflows import TemplateEdge, TemplateRow

__all__ = ["DagLayout", "PlacedEdge", "PlacedNode", "layout"]

LAYER_GAP = 70
ROW_GAP = 18
NODE_HEIGHT = 42
MIN_WIDTH = 110
MAX_WIDTH = 220
MARGIN = 10


@dataclass(frozen=True)
class PlacedNode:
    array_id: int
    name: str
    tasks: int
    x: float
    y: float
    width: float
    height: float
    segments: list[Segment]


@dataclass(frozen=True)
class PlacedEdge:
    upstream_array_id: int
    downstream_array_id: int
    edges: int
    path: str


@dataclass(frozen=True)
class DagLayout:
    width: float
    height: float
    nodes: list[PlacedNode]
    edges: list[PlacedEdge]


def _layers(ids: Sequence[int], edges: Sequence[TemplateEdge]) -> dict[int, int]:
    """Each template's layer: the longest path to it from a template without upstreams."""
    downstream: dict[int, set[int]] = defaultdict(set)
    indegree = dict.fromkeys(ids, 0)
    for edge in edges:
        up, down = edge.upstream_array_id, edge.downstream_array_id
        if up == down or up not in indegree or down not in indegree or down in downstream[up]:
            continue
        downstream[up].add(down)
        indegree[down] += 1
    layer = dict.fromkeys(ids, 0)
    left = dict(indegree)
    ready = [i for i in ids if left[i] == 0]
    done: set[int] = set()
    while len(done) < len(ids):
        if not ready:  # a cycle: start from the first template not placed yet
            ready = [next(i for i in ids if i not in done)]
        node = ready.pop(0)
        if node in done:
            continue
        done.add(node)
        for child in sorted(downstream[node]):
            if child in done:
                continue
            layer[child] = max(layer[child], layer[node] + 1)
            left[child] -= 1
            if left[child] == 0:
                ready.append(child)
    return layer


def layout(templates: Sequence[TemplateRow], edges: Sequence[TemplateEdge]) -> DagLayout:
    """Positions of the templates' boxes and the paths of the edges between them."""
    ids = [template.array_id for template in templates]
    layer = _layers(ids, edges)
    most = max((template.tasks for template in templates), default=1) or 1
    columns: dict[int, list[TemplateRow]] = defaultdict(list)
    for template in templates:
        columns[layer[template.array_id]].append(template)
    column_x: dict[int, float] = {}
    x = float(MARGIN)
    for index in sorted(columns):
        column_x[index] = x
        x += MAX_WIDTH + LAYER_GAP
    placed: dict[int, PlacedNode] = {}
    height = 0.0
    for index, members in columns.items():
        y = float(MARGIN)
        for template in members:
            share = math.log1p(template.tasks) / math.log1p(most) if most > 0 else 0.0
            width = MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * share
            placed[template.array_id] = PlacedNode(
                template.array_id,
                template.name,
                template.tasks,
                column_x[index] + (MAX_WIDTH - width) / 2,
                y,
                width,
                NODE_HEIGHT,
                bar(template.status_counts),
            )
            y += NODE_HEIGHT + ROW_GAP
        height = max(height, y)
    paths = []
    for edge in edges:
        up = placed.get(edge.upstream_array_id)
        down = placed.get(edge.downstream_array_id)
        if up is None or down is None or up is down:
            continue
        x1, y1 = up.x + up.width, up.y + up.height / 2
        x2, y2 = down.x, down.y + down.height / 2
        if x2 <= x1:  # an edge back to an earlier layer (a cycle): go round below
            x2 = down.x + down.width / 2
            y2 = down.y + down.height
        middle = (x1 + x2) / 2
        path = f"M{x1:.1f},{y1:.1f} C{middle:.1f},{y1:.1f} {middle:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        paths.append(PlacedEdge(edge.upstream_array_id, edge.downstream_array_id, edge.edges, path))
    width = max(x - LAYER_GAP + MARGIN, float(MIN_WIDTH))
    return DagLayout(width, max(height, NODE_HEIGHT + 2 * MARGIN), list(placed.values()), paths)
