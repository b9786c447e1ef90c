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


class _Frame:
    """The axes of a chart: ``days`` along x, 0…``top`` (rounded up) along y."""

    def __init__(self, title: str, days: Sequence[date], top: float) -> None:
        self.top = _nice_max(top)
        self.plot_h = HEIGHT - TOP - BOTTOM
        self.step = (WIDTH - LEFT - RIGHT) / len(days)
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'role="img" class="console-chart" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>",
        ]
        for k in range(5):  # horizontal grid with labels
            v = self.top * k / 4
            self.parts.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{self.y(v):.1f}" '
                f'y2="{self.y(v):.1f}" stroke="#e6e7e9"/><text x="{LEFT - 6}" '
                f'y="{self.y(v) + 4:.1f}" text-anchor="end" font-size="11" '
                f'fill="#667382">{_fmt(v)}</text>'
            )
        label_every = max(1, len(days) // 8)
        for i, day in enumerate(days):
            if i % label_every == 0:
                self.parts.append(
                    f'<text x="{self.x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle" '
                    f'font-size="11" fill="#667382">{day:%d.%m}</text>'
                )

    def x(self, i: int) -> float:
        return LEFT + self.step * (i + 0.5)

    def y(self, v: float) -> float:
        return TOP + self.plot_h * (1 - v / self.top)

    def line(self, days: Sequence[date], values: Sequence[float | None], color: str) -> None:
        """A line through the days that have a value (a gap where one has none)."""
        points = [(i, v) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{self.x(i):.1f},{self.y(v):.1f}" for i, v in points)
            self.parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        for i, v in points:
            self.parts.append(
                f'<circle cx="{self.x(i):.1f}" cy="{self.y(v):.1f}" r="3" fill="{color}">'
                f"<title>{days[i]:%Y-%m-%d}: {v:g}</title></circle>"
            )

    def svg(self) -> Markup:
        return Markup("".join([*self.parts, "</svg>"]))


_EMPTY = Markup('<p class="text-secondary">No statistics collected yet.</p>')


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
        return _EMPTY
    frame = _Frame(title, days, max(values))
    if not bars:
        frame.line(days, values, color)
        return frame.svg()
    width = max(1.0, frame.step * 0.7)
    for i, (day, v) in enumerate(zip(days, values, strict=True)):
        frame.parts.append(
            f'<rect x="{frame.x(i) - width / 2:.1f}" y="{frame.y(v):.1f}" width="{width:.1f}" '
            f'height="{TOP + frame.plot_h - frame.y(v):.1f}" fill="{color}">'
            f"<title>{day:%Y-%m-%d}: {v}</title></rect>"
        )
    return frame.svg()


PALETTE = ("#206bc4", "#2fb344", "#f76707", "#ae3ec9")


def series_chart(
    title: str, days: Sequence[date], series: Sequence[tuple[str, Sequence[float | None]]]
) -> Markup:
    """Lines over the same days (a legend when more than one); None: no value that day."""
    values = [v for _, line in series for v in line if v is not None]
    if not days or not values:
        return _EMPTY
    frame = _Frame(title, days, max(values))
    for n, (label, line) in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        frame.line(days, line, color)
        if len(series) == 1:
            continue  # the title names it
        x = LEFT + 8 + 90 * n
        frame.parts.append(
            f'<rect x="{x}" y="4" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="13" font-size="11" fill="#667382">{escape(label)}</text>'
        )
    return frame.svg()
