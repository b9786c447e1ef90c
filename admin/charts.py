"""Server-rendered SVG charts: no JavaScript, nothing fetched, works offline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 16, 28


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k not below ``value``: round axis labels."""
    if value <= 0:
        return 1
    scale: int = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def _fmt(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def daily_chart(
    title: str,
    days: Sequence[date],
    values: Sequence[int],
    *,
    color: str = "#206bc4",
    bars: bool = False,
) -> Markup:
    """A titled chart of one value per day: bars (counts) or a line (totals)."""
    if not days:
        return Markup('<p class="text-secondary">No statistics collected yet.</p>')
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_max(max(values))
    step = plot_w / len(days)

    def x(i: int) -> float:
        return LEFT + step * (i + 0.5)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" class="console-chart" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):  # horizontal grid with labels
        v = top * k / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="#e6e7e9"/><text x="{LEFT - 6}" y="{y(v) + 4:.1f}" '
            f'text-anchor="end" font-size="11" fill="#667382">{_fmt(v)}</text>'
        )
    label_every = max(1, len(days) // 8)
    for i, day in enumerate(days):
        if i % label_every == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle" '
                f'font-size="11" fill="#667382">{day:%d.%m}</text>'
            )
    if bars:
        width = max(1.0, step * 0.7)
        for i, (day, v) in enumerate(zip(days, values, strict=True)):
            parts.append(
                f'<rect x="{x(i) - width / 2:.1f}" y="{y(v):.1f}" width="{width:.1f}" '
                f'height="{TOP + plot_h - y(v):.1f}" fill="{color}">'
                f"<title>{day:%Y-%m-%d}: {v}</title></rect>"
            )
    else:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, (day, v) in enumerate(zip(days, values, strict=True)):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}">'
                f"<title>{day:%Y-%m-%d}: {v}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
