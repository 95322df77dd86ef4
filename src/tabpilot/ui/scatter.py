"""The accuracy-vs-latency scatter as inline SVG drawn on the server.

Inline SVG needs no script and no style attribute (the CSP forbids both inline), every
point is a real link (`<a>` with a `<title>`: keyboard-reachable, named for screen
readers), and it renders in the page's first paint. Marks never rely on colour alone:
front points are diamonds joined by a dashed line, the chosen model and the
FastCandidate carry a ring and a text label.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 50


@dataclass
class Point:
    name: str
    algorithm: str
    objective: float
    latency_ms: float
    front: bool
    chosen: bool
    fast: bool
    href: str
    x: float = 0.0
    y: float = 0.0


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = (hi - lo) / n
    magnitude = 10 ** math.floor(math.log10(step))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step),
               default=step)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def layout(points: list[Point]) -> dict[str, Any]:
    """Pixel positions, axes and the front's path for the template (svg_scatter)."""
    if not points:
        return {"points": [], "empty": True}
    lat = [p.latency_ms for p in points]
    obj = [p.objective for p in points]
    log_x = min(lat) > 0 and max(lat) / min(lat) > 20
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    x_lo, x_hi = fx(min(lat)), fx(max(lat))
    y_lo, y_hi = min(obj), max(obj)
    pad_x = (x_hi - x_lo) * 0.05 or (abs(x_hi) * 0.1 or 1.0)
    pad_y = (y_hi - y_lo) * 0.08 or (abs(y_hi) * 0.05 or 1.0)
    x_lo, x_hi, y_lo, y_hi = x_lo - pad_x, x_hi + pad_x, y_lo - pad_y, y_hi + pad_y
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(v: float) -> float:
        return round(LEFT + (fx(v) - x_lo) / (x_hi - x_lo) * plot_w, 1)

    def py(v: float) -> float:
        return round(TOP + (1 - (v - y_lo) / (y_hi - y_lo)) * plot_h, 1)

    for p in points:
        p.x, p.y = px(p.latency_ms), py(p.objective)
    if log_x:
        x_ticks = [10 ** e for e in range(math.floor(x_lo), math.ceil(x_hi) + 1)
                   if x_lo <= e <= x_hi]
    else:
        x_ticks = [t for t in _ticks(x_lo, x_hi) if t >= 0]
    front = sorted((p for p in points if p.front), key=lambda p: p.latency_ms)
    # drawn first to last: plain points, then the front, then the marked ones on top
    order = sorted(points, key=lambda p: (p.chosen or p.fast, p.front))
    return {
        "empty": False, "width": WIDTH, "height": HEIGHT, "left": LEFT, "top": TOP,
        "right": WIDTH - RIGHT, "bottom": HEIGHT - BOTTOM, "log_x": log_x,
        "x_ticks": [(px(t), _fmt(t)) for t in x_ticks],
        "y_ticks": [(py(t), _fmt(t)) for t in _ticks(y_lo, y_hi) if y_lo <= t <= y_hi],
        "front_path": " ".join(f"{p.x},{p.y}" for p in front),
        "points": order,
    }


def points_svg(points: list[Point], link: Callable[[str], str], metric: str | None) -> Markup:
    """The points' markup: one `<a>` per candidate (written here rather than in the
    template: a job has hundreds of points and this is the page's hottest loop)."""
    out = []
    for p in points:
        marks = "".join(t for t, on in ((", on the front", p.front), (", chosen model", p.chosen),
                                          (", FastCandidate", p.fast)) if on)
        title = escape(f"{p.name} ({p.algorithm}): {metric} {p.objective:.4g}, "
                       f"{p.latency_ms:.3g} ms{marks}")
        x, y = p.x, p.y
        if p.front:
            shape = (f'<polygon class="point front" points="{x},{y - 6} {x + 6},{y} '
                     f'{x},{y + 6} {x - 6},{y}"/>')
        else:
            shape = f'<circle class="point" cx="{x}" cy="{y}" r="4"/>'
        if p.chosen:
            shape += (f'<circle class="point chosen" cx="{x}" cy="{y}" r="10"/>'
                      f'<text x="{x + 12}" y="{y - 10}">★ chosen</text>')
        if p.fast:
            shape += (f'<circle class="point fast" cx="{x}" cy="{y}" r="10"/>'
                      f'<text x="{x + 12}" y="{y + 16}">⚡ fast</text>')
        out.append(f'<a href="{escape(link(p.href))}"><title>{title}</title>{shape}</a>')
    return Markup("\n".join(out))
