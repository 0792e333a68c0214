"""Drawn on the server: the land the map's canvas fills (shipped Natural Earth, one SVG path); a partnership network."""

import json
from functools import cache
from pathlib import Path

import networkx as nx

WIDTH, HEIGHT = 960, 480


def project(lon: float, lat: float) -> tuple[float, float]:
    """Equirectangular: longitude and latitude straight onto the page."""
    return (lon + 180) / 360 * WIDTH, (90 - lat) / 180 * HEIGHT


@cache
def land_path() -> str:
    """The land outline as one SVG path, decoded from the shipped TopoJSON."""
    topo = json.loads((Path(__file__).parent / "data" / "land-110m.json").read_text())
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)

    def ring(indexes: list[int]) -> list[tuple[float, float]]:
        points: list[tuple[float, float]] = []
        for i in indexes:
            arc = arcs[i] if i >= 0 else arcs[~i][::-1]
            points.extend(arc if not points else arc[1:])
        return points

    parts = []
    for geometry in topo["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for indexes in polygon:
                parts.append(_svg_ring([project(lon, lat) for lon, lat in ring(indexes)]))
    return "".join(parts)


def _svg_ring(coords: list[tuple[float, float]]) -> str:
    """A closed ring; a jump across the antimeridian lifts the pen instead of drawing across the map."""
    out, previous = [], None
    for x, y in coords:
        command = "M" if previous is None or abs(x - previous[0]) > WIDTH / 2 else "L"
        out.append(f"{command}{x:.1f},{y:.1f}")
        previous = (x, y)
    return "".join(out) + "Z"


def network_layout(center: str, edges: list[tuple[str, str]], *, size: int = 480) -> dict[str, tuple[float, float]]:
    """Positions for the partnership network around `center` (networkx spring layout, fixed seed)."""
    graph = nx.Graph()
    graph.add_node(center)
    graph.add_edges_from(edges)
    positions = nx.spring_layout(graph, seed=7, center=(0, 0))
    margin = 40
    scale = (size - 2 * margin) / 2
    return {node: (margin + scale * (x + 1), margin + scale * (y + 1)) for node, (x, y) in positions.items()}
