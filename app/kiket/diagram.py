"""Layered layout of a workflow's states and transitions for a server-rendered SVG diagram.

Pure: takes a `Workflow`, returns frozen dataclasses with coordinates and SVG path strings; the
Jinja fragment `repositories/_workflow_diagram.html` only draws them. Layers run top to bottom
(Sugiyama style): depth from the initial state, back edges arc on the right, edges spanning
several layers pass through dummy lanes so they never cross a state box.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Literal

from app.kiket.model import SlaPolicy, State, Transition, Workflow

__all__ = ["Badge", "Node", "Edge", "Diagram", "layout_workflow", "truncate", "text_width", "format_duration"]

ANY_KEY = "*"
MAX_LABEL = 22
LABEL_PX = 7.0  # per character at 12 px
EDGE_PX = 6.2  # per character at 11 px
BADGE_PX = 6.0  # per character at 10 px
NODE_PAD = 14
NODE_MIN_W = 96
NODE_H = 36
NODE_H_BADGES = 56
BADGE_H = 15
BADGE_GAP = 4
ANY_W, ANY_H = 72, 24
DUMMY_W = 14
H_GAP = 48
V_GAP = 80
MARGIN = 20
BACK_BULGE = 26.0
LABEL_H = 15
BADGE_ICON = 13

EdgeKind = Literal["forward", "back", "self", "flat", "any"]


@dataclass(frozen=True)
class Badge:
    """A small marker inside a state box; `x` is relative to the box's left edge."""

    kind: Literal["sla", "approval", "checklist", "wip"]
    icon: str
    text: str
    title: str
    x: float
    width: float


@dataclass(frozen=True)
class Node:
    """A state box (or the "any state" pseudo-node, key `*`) with its markers and provenance."""

    key: str
    label: str
    full_label: str
    category: str
    kind: str
    layer: int
    x: float
    y: float
    width: float
    height: float
    sla: bool = False
    sla_text: str = ""
    approval: bool = False
    approval_text: str = ""
    checklist: bool = False
    wip_limit: int | None = None
    badges: tuple[Badge, ...] = ()
    description: str = ""
    prov_path: str | None = None
    prov_line: int | None = None

    @property
    def pseudo(self) -> bool:
        """True for the "any state" node that stands for `from: "*"`."""
        return self.key == ANY_KEY

    @property
    def origin(self) -> str:
        """`path:line` of the defining YAML node, or "" when unknown."""
        return _origin(self.prov_path, self.prov_line)

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Edge:
    """One drawn transition: an SVG path `d`, where its label goes, and which states it covers."""

    id: str
    name: str
    label: str
    source: str
    target: str
    sources: tuple[str, ...]
    kind: EdgeKind
    d: str
    label_x: float
    label_y: float
    label_width: float
    approval_required: bool = False
    prov_path: str | None = None
    prov_line: int | None = None

    @property
    def dashed(self) -> bool:
        return self.kind == "any"

    @property
    def origin(self) -> str:
        """`path:line` of the defining YAML node, or "" when unknown."""
        return _origin(self.prov_path, self.prov_line)


@dataclass(frozen=True)
class Diagram:
    """A laid-out workflow: nodes, edges and the viewBox size."""

    workflow_id: str
    name: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: float
    height: float
    layers: int
    min_x: float = 0

    @property
    def view_box(self) -> str:
        return f"{_n(self.min_x)} 0 {_n(self.width)} {_n(self.height)}"

    def node(self, key: str) -> Node:
        """The node of a state key (or `*`); KeyError if absent."""
        for node in self.nodes:
            if node.key == key:
                return node
        raise KeyError(key)

    @property
    def summary(self) -> str:
        """One sentence for the SVG `<desc>`."""
        states = sum(1 for n in self.nodes if not n.pseudo)
        return f"Workflow {self.name}: {states} states and {len(self.edges)} transitions."


def _origin(path: str | None, line: int | None) -> str:
    if not path:
        return ""
    return f"{path}:{line}" if line else path


def _n(value: float) -> str:
    """Compact, deterministic number formatting for SVG attributes."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def truncate(text: str, limit: int = MAX_LABEL) -> str:
    """Shorten to `limit` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def text_width(text: str, per_char: float = LABEL_PX) -> float:
    """Estimated rendered width: wide (non-ASCII symbol) characters count a little more."""
    return sum(per_char * (1.6 if ord(ch) > 0x2000 else 1.0) for ch in text)


def format_duration(seconds: int) -> str:
    """Short duration: `15m`, `4h`, `24h`, `3d`."""
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _sla_texts(sla: SlaPolicy) -> tuple[str, str]:
    """Badge text from the default rule (else the first), and a tooltip listing every rule."""
    if not sla.rules:
        return "SLA", "SLA"
    rule = next((r for r in sla.rules if r.default or r.when is None), sla.rules[0])

    def thresholds(r) -> str:
        warning = f"{round(r.warning_share * 100)}%" if r.warning_share else (
            format_duration(r.warning_s) if r.warning_s else "")
        breach = format_duration(r.breach_s) if r.breach_s else ""
        return "/".join(p for p in (warning, breach) if p) or "?"

    text = f"SLA {thresholds(rule)}"
    if len(sla.rules) > 1:
        text += f" +{len(sla.rules) - 1}"
    parts = []
    for r in sla.rules:
        scope = "default" if (r.default or r.when is None) else "conditional"
        parts.append(f"{scope} warning/breach {thresholds(r)}")
    title = "SLA: " + "; ".join(parts) + (" (business hours)" if sla.business_hours else "")
    return text, title


def _approval_text(state: State) -> str:
    policy = state.approval
    assert policy is not None
    count = policy.required if policy.mode == "quorum" else (
        1 if policy.mode == "any" else max(1, len(policy.approvers)))
    return f"{count} approval" if count == 1 else f"{count} approvals"


def _badges(state: State) -> tuple[tuple[Badge, ...], float]:
    """Badges laid out left to right from x=0; returns them and their total width."""
    specs: list[tuple[str, str, str, str]] = []
    if state.sla is not None:
        text, title = _sla_texts(state.sla)
        specs.append(("sla", "⏱", text, title))
    if state.approval is not None:
        text = _approval_text(state)
        who = ", ".join(f"{a.kind} {a.ref}" for a in state.approval.approvers)
        title = f"Approval ({state.approval.mode}): {text}" + (f" by {who}" if who else "")
        specs.append(("approval", "✔", text, title))
    if state.checklists:
        titles = ", ".join(c.title or c.id for c in state.checklists.values())
        specs.append(("checklist", "☑", "checklist", f"Checklist: {titles}"))
    if state.wip_limit is not None:
        specs.append(("wip", "", f"WIP {state.wip_limit}", f"WIP limit {state.wip_limit}"))
    badges: list[Badge] = []
    x = 0.0
    for kind, icon, text, title in specs:
        # The icon is drawn in a fixed 10 px slot (the SLA clock is vector, not a font glyph).
        width = round(text_width(text, BADGE_PX) + 12 + (BADGE_ICON if icon else 0))
        badges.append(Badge(kind, icon, text, title, x, width))  # type: ignore[arg-type]
        x += width + BADGE_GAP
    return tuple(badges), max(0.0, x - BADGE_GAP)


@dataclass
class _Vertex:
    """Mutable layout vertex: a real node, the "any" node, or a dummy lane of a long edge."""

    key: str
    layer: int
    width: float
    height: float
    dummy: bool = False
    x: float = 0.0  # centre
    order: float = 0.0


@dataclass
class _Route:
    """A drawn edge before coordinates: its chain of vertices from source to target."""

    transition: Transition
    source: str
    target: str
    kind: EdgeKind
    chain: list[str]
    shape: str = ""  # geometry: forward, back, flat or self (an "any" edge keeps its kind)


def _layers(workflow: Workflow, links: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path depth from the initial state over DFS-forward edges; finals go to the last layer."""
    keys = list(workflow.states)
    succ: dict[str, list[str]] = {k: [] for k in keys}
    for source, target in links:
        if source != target and target not in succ[source]:
            succ[source].append(target)
    # Iterative DFS from the initial state (then any unvisited state, in declaration order)
    # marks back edges: those closing a cycle onto the current path.
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}
    for root in [workflow.initial, *keys]:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    topo: list[str] = []
    indeg = {k: 0 for k in keys}
    for s in keys:
        for t in succ[s]:
            if (s, t) not in back:
                indeg[t] += 1
    ready = [k for k in keys if indeg[k] == 0]
    ready.sort(key=lambda k: k != workflow.initial)
    while ready:
        node = ready.pop(0)
        topo.append(node)
        for t in succ[node]:
            if (node, t) not in back:
                indeg[t] -= 1
                if indeg[t] == 0:
                    ready.append(t)
    layer = {k: 0 for k in keys}
    for node in topo:
        for t in succ[node]:
            if (node, t) not in back and t != workflow.initial:
                layer[t] = max(layer[t], layer[node] + 1)
    finals = [k for k in keys if workflow.states[k].is_final and k != workflow.initial]
    if finals:
        last = max([layer[k] for k in keys if k not in finals] + [0]) + 1
        for k in finals:
            layer[k] = last
    return layer


def _routes(workflow: Workflow) -> tuple[list[_Route], bool]:
    """One route per transition; `*` sources become a single edge from the "any" node."""
    routes: list[_Route] = []
    has_any = False
    for tr in workflow.transitions:
        if tr.target not in workflow.states:
            continue
        if tr.sources == "*":
            has_any = True
            routes.append(_Route(tr, ANY_KEY, tr.target, "any", []))
            continue
        for source in tr.sources:
            if source in workflow.states:
                kind: EdgeKind = "self" if source == tr.target else "forward"
                routes.append(_Route(tr, source, tr.target, kind, []))
    return routes, has_any


def layout_workflow(workflow: Workflow) -> Diagram:
    """Lay out a workflow as a layered, top-to-bottom diagram (deterministic)."""
    routes, has_any = _routes(workflow)
    layer = _layers(workflow, [(r.source, r.target) for r in routes if r.kind != "any"])
    if has_any:
        targets = [layer[r.target] for r in routes if r.kind == "any"]
        layer[ANY_KEY] = max(0, min(targets) - 1)

    # Real vertices.
    vertices: dict[str, _Vertex] = {}
    node_info: dict[str, tuple[str, tuple[Badge, ...]]] = {}
    for key, st in workflow.states.items():
        label = truncate(st.label)
        badges, badges_w = _badges(st)
        width = max(NODE_MIN_W, text_width(label) + 2 * NODE_PAD, badges_w + 2 * 8)
        height = NODE_H_BADGES if badges else NODE_H
        vertices[key] = _Vertex(key, layer[key], round(width), height)
        node_info[key] = (label, badges)
    if has_any:
        vertices[ANY_KEY] = _Vertex(ANY_KEY, layer[ANY_KEY], ANY_W, ANY_H)

    # Classify edges by layer and thread long ones through dummy vertices.
    dummy_no = 0
    for route in routes:
        s, t = route.source, route.target
        if route.kind == "self":
            route.chain = [s]
            route.shape = "self"
            continue
        ls, lt = layer[s], layer[t]
        route.shape = "flat" if ls == lt else ("back" if lt < ls else "forward")
        if route.kind != "any":
            route.kind = route.shape  # type: ignore[assignment]
        step = 1 if lt > ls else -1
        chain = [s]
        for lay in range(ls + step, lt, step) if ls != lt else ():
            dummy_no += 1
            key = f"\x00d{dummy_no}"
            vertices[key] = _Vertex(key, lay, DUMMY_W, 0, dummy=True)
            chain.append(key)
        chain.append(t)
        route.chain = chain

    n_layers = max(v.layer for v in vertices.values()) + 1
    rows: list[list[_Vertex]] = [[] for _ in range(n_layers)]
    for v in vertices.values():  # insertion order: declaration order, then dummies
        rows[v.layer].append(v)
    if has_any:  # the pseudo-node sits at the right end of its layer
        any_v = vertices[ANY_KEY]
        rows[any_v.layer].remove(any_v)
        rows[any_v.layer].append(any_v)
    up: dict[str, list[str]] = {k: [] for k in vertices}
    down: dict[str, list[str]] = {k: [] for k in vertices}
    for route in routes:
        for a, b in zip(route.chain, route.chain[1:]):
            va, vb = vertices[a], vertices[b]
            if va.layer == vb.layer:
                continue
            hi, lo = (a, b) if va.layer < vb.layer else (b, a)
            down[hi].append(lo)
            up[lo].append(hi)

    def renumber() -> None:
        for row in rows:
            for i, v in enumerate(row):
                v.order = float(i)

    renumber()
    # Barycenter sweeps to reduce crossings; ties keep the current order (stable sort).
    for sweep in range(4):
        order = range(1, n_layers) if sweep % 2 == 0 else range(n_layers - 2, -1, -1)
        for i in order:
            neighbours = up if sweep % 2 == 0 else down
            row = rows[i]

            def bary(v: _Vertex) -> float:
                ns = neighbours[v.key]
                return sum(vertices[k].order for k in ns) / len(ns) if ns else v.order

            row.sort(key=lambda v: (v.key == ANY_KEY, bary(v)))
            renumber()

    # Horizontal placement: pack, then pull each row towards its neighbours' centres.
    def gap(a: _Vertex, b: _Vertex) -> float:
        # Room beside long edges lets their neighbours' labels sit next to their own line.
        return (H_GAP if not (a.dummy and b.dummy) else 24) + (a.width + b.width) / 2

    for row in rows:
        x = 0.0
        for i, v in enumerate(row):
            x = v.width / 2 if i == 0 else x + gap(row[i - 1], v)
            v.x = x
    for sweep in range(4):
        order = range(1, n_layers) if sweep % 2 == 0 else range(n_layers - 2, -1, -1)
        neighbours = up if sweep % 2 == 0 else down
        for i in order:
            row = rows[i]
            desired = []
            for v in row:
                ns = neighbours[v.key]
                desired.append(sum(vertices[k].x for k in ns) / len(ns) if ns else v.x)
            placed: list[float] = []
            for j, v in enumerate(row):
                want = desired[j]
                placed.append(want if j == 0 else max(want, placed[-1] + gap(row[j - 1], v)))
            shift = sum(d - p for d, p in zip(desired, placed)) / len(row)
            # Shifting the whole row keeps gaps; it re-centres rows pushed right by packing.
            for v, p in zip(row, placed):
                v.x = p + shift
    left = min(v.x - v.width / 2 for v in vertices.values())
    right_extra = 0.0
    for v in vertices.values():
        v.x += MARGIN - left

    # Vertical placement: one row per layer, boxes centred in it.
    row_h = [max([v.height for v in row] + [NODE_H]) for row in rows]
    row_top: list[float] = []
    y = MARGIN
    for h in row_h:
        row_top.append(y)
        y += h + V_GAP
    height = y - V_GAP + MARGIN

    def box(key: str) -> tuple[float, float, float, float]:
        v = vertices[key]
        if v.dummy:
            top = row_top[v.layer]
            return v.x, top, 0.0, row_h[v.layer]
        top = row_top[v.layer] + (row_h[v.layer] - v.height) / 2
        return v.x - v.width / 2, top, v.width, v.height

    # Ports: edges leaving/entering a box's top or bottom are spread along it, sorted by the
    # x of the far end, so a pair of opposite edges between two states never share a line.
    ports: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
    for idx, route in enumerate(routes):
        if route.shape in ("self", "flat"):
            continue
        chain = route.chain
        first, second = chain[0], chain[1]
        last, before = chain[-1], chain[-2]
        down_first = vertices[second].layer > vertices[first].layer
        ports.setdefault((first, "bottom" if down_first else "top"), []).append((vertices[second].x, idx, 0))
        ports.setdefault((last, "top" if down_first else "bottom"), []).append((vertices[before].x, idx, 1))
    port_x: dict[tuple[int, int], float] = {}
    for (key, _side), items in ports.items():
        items.sort()
        v = vertices[key]
        span = v.width * 0.6
        step = min(22.0, span / max(1, len(items) - 1)) if len(items) > 1 else 0.0
        for i, (_x, idx, end) in enumerate(items):
            port_x[(idx, end)] = v.x + (i - (len(items) - 1) / 2) * step

    occupied: list[tuple[float, float, float, float]] = [
        box(k) for k, v in vertices.items() if not v.dummy
    ]
    adjacent = {(r.source, r.target) for r in routes if r.shape in ("forward", "back") and len(r.chain) == 2}
    geometry: list[tuple[list, str, float]] = []
    back_seen: dict[tuple[str, str], int] = {}
    pair_seen: dict[tuple[str, str], int] = {}
    for idx, route in enumerate(routes):
        tr = route.transition
        label = truncate(tr.name)
        lw = round(text_width(label, EDGE_PX) + 8)
        segments: list[tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]] = []
        if route.shape == "self":
            x, y0, w, h = box(route.source)
            rx, cy = x + w, y0 + h / 2
            n = pair_seen.get((route.source, route.source), 0)
            pair_seen[(route.source, route.source)] = n + 1
            reach = 34 + 14 * n
            segments.append(((rx, cy - 8), (rx + reach, cy - 26), (rx + reach, cy + 26), (rx, cy + 8)))
            right_extra = max(right_extra, rx + reach + lw)
        elif route.shape == "flat":
            sx, sy, sw, sh = box(route.source)
            tx, ty, tw, th = box(route.target)
            n = pair_seen.get((route.source, route.target), 0)
            pair_seen[(route.source, route.target)] = n + 1
            # Side to side, sagging a little, so top and bottom ports stay free for the layers.
            rightwards = tx > sx
            a = (sx + sw if rightwards else sx, sy + sh / 2 + 6 * n)
            b = (tx if rightwards else tx + tw, ty + th / 2 + 6 * n)
            pull = 24 if rightwards else -24
            sag = 14 + 10 * n
            segments.append((a, (a[0] + pull, a[1] + sag), (b[0] - pull, b[1] + sag), b))
        else:
            points: list[tuple[float, float]] = []
            chain = route.chain
            going_down = vertices[chain[1]].layer > vertices[chain[0]].layer
            sx, sy, sw, sh = box(chain[0])
            points.append((port_x[(idx, 0)], sy + sh if going_down else sy))
            for key in chain[1:-1]:
                dx, dy, _dw, dh = box(key)
                points.extend([(dx, dy), (dx, dy + dh)] if going_down else [(dx, dy + dh), (dx, dy)])
            tx, ty, tw, th = box(chain[-1])
            points.append((port_x[(idx, 1)], ty if going_down else ty + th))
            bulge = 0.0
            if route.shape == "back" and len(chain) == 2:
                pair = (min(route.source, route.target), max(route.source, route.target))
                n = back_seen.get(pair, 0)
                back_seen[pair] = n + 1
                bulge = BACK_BULGE + 10 * n
            for i, (p, q) in enumerate(zip(points, points[1:])):
                if p[0] == q[0] and i % 2 == 1:  # the straight run through a dummy lane
                    segments.append((p, p, q, q))
                    continue
                my = (p[1] + q[1]) / 2
                segments.append((p, (p[0] + bulge, my), (q[0] + bulge, my), q))
        d = "M" + " ".join(
            [f"{_n(segments[0][0][0])},{_n(segments[0][0][1])}"]
            + [f"C{_n(c1[0])},{_n(c1[1])} {_n(c2[0])},{_n(c2[1])} {_n(q[0])},{_n(q[1])}" for _, c1, c2, q in segments]
        )
        geometry.append((segments, d, lw))

    # Labels go where they cover no box, no other label and as little of other lines as
    # possible; each line is sampled once so scoring a candidate stays cheap.
    samples = [
        [_bezier(seg, t / 8) for seg in segs for t in range(9)] for segs, _d, _lw in geometry
    ]
    non_final = tuple(k for k, st in workflow.states.items() if not st.is_final)
    edges: list[Edge] = []
    for idx, route in enumerate(routes):
        tr = route.transition
        label = truncate(tr.name)
        segments, d, lw = geometry[idx]
        # Opposite edges between neighbouring states: each label sits beside its own line (the
        # forward one on the left, the back arc's on the right) instead of stacking.
        side = 0
        if (route.target, route.source) in adjacent and (route.source, route.target) in adjacent:
            side = 1 if route.shape == "back" else -1
        # Only points near this path can meet a candidate label box.
        xs = [pt[0] for pt in samples[idx]]
        ys = [pt[1] for pt in samples[idx]]
        x0, x1 = min(xs) - lw - 12, max(xs) + lw + 12
        y0, y1 = min(ys) - LABEL_H, max(ys) + LABEL_H
        others = sorted((pt[1], pt[0]) for j, pts in enumerate(samples) if j != idx for pt in pts
                        if x0 <= pt[0] <= x1 and y0 <= pt[1] <= y1)
        lx, ly = _place_label(segments, lw, occupied, others, route.shape, side)
        occupied.append((lx - lw / 2, ly - LABEL_H / 2, lw, LABEL_H))
        sources = non_final if route.kind == "any" else (route.source,)
        edges.append(Edge(
            id=tr.id if len(_sources_list(tr)) <= 1 else f"{tr.id}--{route.source}",
            name=tr.name, label=label, source=route.source, target=route.target, sources=sources,
            kind=route.kind, d=d, label_x=round(lx, 1), label_y=round(ly, 1), label_width=lw,
            approval_required=bool(tr.approval_required or tr.approval),
            prov_path=tr.prov.path, prov_line=tr.prov.line,
        ))

    nodes: list[Node] = []
    for key, v in vertices.items():
        if v.dummy:
            continue
        x, y0, w, h = box(key)
        if key == ANY_KEY:
            nodes.append(Node(ANY_KEY, "any state", "Any non-final state", "any", "any", v.layer,
                              round(x, 1), round(y0, 1), w, h))
            continue
        st = workflow.states[key]
        label, badges = node_info[key]
        sla_text = _sla_texts(st.sla)[0] if st.sla else ""
        nodes.append(Node(
            key=key, label=label, full_label=st.label, category=st.category, kind=st.kind, layer=v.layer,
            x=round(x, 1), y=round(y0, 1), width=w, height=h,
            sla=st.sla is not None, sla_text=sla_text,
            approval=st.approval is not None, approval_text=_approval_text(st) if st.approval else "",
            checklist=bool(st.checklists), wip_limit=st.wip_limit, badges=badges,
            description=st.description or "", prov_path=st.prov.path, prov_line=st.prov.line,
        ))
    # Labels and loops may stick out left of the first box: the viewBox starts there instead.
    min_x = min([0.0] + [e.label_x - e.label_width / 2 - MARGIN for e in edges])
    max_x = max([n.x + n.width for n in nodes] + [right_extra] + [e.label_x + e.label_width / 2 for e in edges])
    return Diagram(workflow.id, workflow.name, tuple(nodes), tuple(edges), round(max_x + MARGIN - min_x),
                   round(height), n_layers, min_x=math.floor(min_x))


def _sources_list(tr: Transition) -> tuple[str, ...]:
    return () if tr.sources == "*" else tuple(tr.sources)


def _bezier(seg, t: float) -> tuple[float, float]:
    p0, p1, p2, p3 = seg
    u = 1 - t
    a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
    return (a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1])


def _overlaps(r1, r2) -> bool:
    return r1[0] < r2[0] + r2[2] and r2[0] < r1[0] + r1[2] and r1[1] < r2[1] + r2[3] and r2[1] < r1[1] + r1[3]


def _place_label(segments, lw: float, occupied, others, kind: str, side: int = 0) -> tuple[float, float]:
    """The candidate point along the path (middle first) whose label box collides least.

    `others` are (y, x) samples of the other edges' lines, sorted by y.
    """
    if kind == "self":
        p0, c1, _c2, p3 = segments[0]
        return c1[0] - 6 + lw / 2, (p0[1] + p3[1]) / 2
    n = len(segments)
    seg_order = sorted(range(n), key=lambda i: (abs(i - (n - 1) / 2), i))
    # Straight dummy runs are inside a layer row; prefer the curved inter-layer segments.
    seg_order.sort(key=lambda i: segments[i][0] == segments[i][1])
    sides = (side, 0, -side) if side else (0, 1, -1)
    best: tuple[float, float] | None = None
    best_score = math.inf
    rank = 0
    for sd in sides:
        for i in seg_order:
            for t in (0.5, 0.35, 0.65, 0.22, 0.78):
                x, y = _bezier(segments[i], t)
                x += sd * (lw / 2 + 5)
                rect = (x - lw / 2 - 2, y - LABEL_H / 2, lw + 4, LABEL_H)
                hard = sum(1 for o in occupied if _overlaps(rect, o))
                lo = bisect.bisect_left(others, (rect[1], -math.inf))
                hi = bisect.bisect_right(others, (rect[1] + rect[3], math.inf))
                soft = sum(1 for _py, px in others[lo:hi] if rect[0] <= px <= rect[0] + rect[2])
                # Rank breaks ties towards the preferred side and the middle of the path.
                score = hard * 1000 + soft * 10 + rank * 0.01
                rank += 1
                if score < best_score:
                    best, best_score = (x, y), score
                if score < 10:
                    return x, y
    assert best is not None
    return best
