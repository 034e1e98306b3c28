"""Small charts as inline SVG, drawn in Python: line, scatter, grouped bar and histogram.

No plotting library and no JavaScript: each chart is one self-contained `<svg>` string, every text
in it escaped, for a page whose Content-Security-Policy forbids scripts and remote loads. Values
that are not finite numbers are skipped; input with nothing left draws a "no data" placeholder; a
single value, or equal min and max, gets a padded range. Axis ticks are "nice" numbers, 1, 2 or 5
times a power of ten (Heckbert, "Nice numbers for graph labels", Graphics Gems, 1990): the step is
the smallest such number >= span / target, and the axis runs over whole steps around the data."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

Point = tuple[float, float]
# Okabe & Ito's colour-blind-safe palette; series take colours in order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH, HEIGHT = 480, 280


def finite(value: object) -> bool:
    """A real number that is neither NaN nor infinite (bools are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def nice_step(span: float, target: int = 5) -> float:
    """The smallest 1, 2 or 5 x 10^k that is >= span / target (span > 0)."""
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))


def axis_range(values: Sequence[float], include_zero: bool = False,
               target: int = 5) -> tuple[float, float, list[float]]:
    """(low, high, ticks) of an axis covering the finite `values` in whole nice steps.

    No finite value: (0, 1) in steps of 0.2. Equal min and max v: padded to v +- |v|/10 (+-1 at 0)."""
    clean = [float(v) for v in values if finite(v)] + ([0.0] if include_zero else [])
    lo, hi = (min(clean), max(clean)) if clean else (0.0, 1.0)
    if lo == hi:
        pad = abs(lo) / 10 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, target)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    ticks = [_tidy((first + i) * step, step) for i in range(last - first + 1)]
    return ticks[0], ticks[-1], ticks


def ticks_within(lo: float, hi: float, target: int = 5) -> list[float]:
    """Nice ticks inside [lo, hi] (for an axis whose ends are fixed, like a histogram's edges)."""
    step = nice_step(hi - lo, target)
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return [_tidy(k * step, step) for k in range(first, last + 1)]


def _tidy(value: float, step: float) -> float:
    """Round away float noise (0.30000000000000004 -> 0.3) at two digits below the step."""
    return round(value, max(0, 2 - math.floor(math.log10(step)))) + 0.0  # + 0.0: no -0.0


def tick_label(value: float, step: float) -> str:
    """A tick's text with as many decimals as the step needs (step 0.2 -> "0.4", step 5 -> "10")."""
    if abs(value) >= 1e6:
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def number(value: float) -> str:
    """A value for a tooltip: four significant digits, integers as integers."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


@dataclass(frozen=True)
class Frame:
    """Data coordinates -> SVG pixels; the plot area is the box inside the margins."""
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    width: int = WIDTH
    height: int = HEIGHT
    left: int = 60
    right: int = 16
    top: int = 46
    bottom: int = 44

    def x(self, value: float) -> float:
        span = self.width - self.left - self.right
        return self.left + (value - self.x_lo) / (self.x_hi - self.x_lo) * span

    def y(self, value: float) -> float:
        span = self.height - self.top - self.bottom
        return self.height - self.bottom - (value - self.y_lo) / (self.y_hi - self.y_lo) * span


def svg(title: str, body: Sequence[str], width: int = WIDTH, height: int = HEIGHT) -> str:
    """The `<svg>` element around `body`, titled (first line drawn, and the accessible name)."""
    t = escape(title)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{t}"><title>{t}</title>'
            f'<rect width="{width}" height="{height}" fill="#fff"/>'
            f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" font-size="14" font-weight="600" '
            f'fill="#222">{t}</text>' + "".join(body) + "</svg>")


def no_data(title: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The placeholder drawn where a chart has nothing to show."""
    return svg(title, [f'<text class="no-data" x="{width / 2:.1f}" y="{height / 2:.1f}" '
                       'text-anchor="middle" font-size="13" fill="#888">no data</text>'], width, height)


def legend(names: Sequence[str], frame: Frame) -> list[str]:
    """Colour swatches and names in a row under the title (none for a single series)."""
    if len(names) < 2:
        return []
    out, x = [], float(frame.left)
    for i, name in enumerate(names):
        out.append(f'<rect x="{x:.1f}" y="27" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{x + 14:.1f}" y="36" font-size="11" fill="#333">{escape(name)}</text>')
        x += 24 + 6.5 * len(name)
    return out


def axes(frame: Frame, x_ticks: Sequence[float], y_ticks: Sequence[float], x_label: str,
         y_label: str, x_names: Sequence[tuple[float, str]] = ()) -> list[str]:
    """Grid lines and labels at the y ticks, x ticks (numbers, or `x_names` at their centres), the
    two axis lines and the axis titles."""
    base, top = frame.height - frame.bottom, frame.top
    right = frame.width - frame.right
    out = []
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for t in y_ticks:
        y = frame.y(t)
        out.append(f'<line x1="{frame.left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                   f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill="#444">{tick_label(t, y_step)}</text>')
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    labels = x_names or [(t, tick_label(t, x_step)) for t in x_ticks]
    for value, text in labels:
        x = frame.x(value)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" stroke="#444"/>'
                   f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle" font-size="11" '
                   f'fill="#444">{escape(text)}</text>')
    out.append(f'<line x1="{frame.left}" x2="{right}" y1="{base}" y2="{base}" stroke="#444"/>'
               f'<line x1="{frame.left}" x2="{frame.left}" y1="{top}" y2="{base}" stroke="#444"/>'
               f'<text x="{(frame.left + right) / 2:.1f}" y="{frame.height - 8}" text-anchor="middle" '
               f'font-size="12" fill="#222">{escape(x_label)}</text>'
               f'<text transform="translate(14 {(top + base) / 2:.1f}) rotate(-90)" text-anchor="middle" '
               f'font-size="12" fill="#222">{escape(y_label)}</text>')
    return out


def clean_points(series: Mapping[str, Sequence[Point]]) -> dict[str, list[Point]]:
    """Each series' points with both coordinates finite; series left empty are dropped."""
    out = {name: [(float(x), float(y)) for x, y in points if finite(x) and finite(y)]
           for name, points in series.items()}
    return {name: points for name, points in out.items() if points}


def _point_frame(series: dict[str, list[Point]], width: int, height: int):
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x_lo, x_hi, x_ticks = axis_range(xs)
    y_lo, y_hi, y_ticks = axis_range(ys)
    return Frame(x_lo, x_hi, y_lo, y_hi, width, height), x_ticks, y_ticks


def _marker(frame: Frame, name: str, x: float, y: float, colour: str, radius: float) -> str:
    return (f'<circle class="point" cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="{radius}" '
            f'fill="{colour}"><title>{escape(name)}: ({number(x)}, {number(y)})</title></circle>')


def line_chart(series: Mapping[str, Sequence[Point]], title: str = "", x_label: str = "",
               y_label: str = "", width: int = WIDTH, height: int = HEIGHT,
               markers: bool = False) -> str:
    """One polyline per named series of (x, y) points, joined in the order given (so a trajectory,
    like reward against KL over training, draws as a path). A series of one point, or every point
    when `markers`, also gets a dot (class "point")."""
    clean = clean_points(series)
    if not clean:
        return no_data(title, width, height)
    frame, x_ticks, y_ticks = _point_frame(clean, width, height)
    body = axes(frame, x_ticks, y_ticks, x_label, y_label) + legend(list(clean), frame)
    for i, (name, points) in enumerate(clean.items()):
        colour = PALETTE[i % len(PALETTE)]
        if len(points) > 1:
            path = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
            body.append(f'<polyline class="series" points="{path}" fill="none" stroke="{colour}" '
                        f'stroke-width="1.8"><title>{escape(name)}</title></polyline>')
        if markers or len(points) == 1:
            body += [_marker(frame, name, x, y, colour, 3) for x, y in points]
    return svg(title, body, width, height)


def scatter(points: Mapping[str, Sequence[Point]], title: str = "", x_label: str = "",
            y_label: str = "", width: int = WIDTH, height: int = HEIGHT) -> str:
    """A dot (class "point") per finite (x, y), coloured by series, each with a tooltip."""
    clean = clean_points(points)
    if not clean:
        return no_data(title, width, height)
    frame, x_ticks, y_ticks = _point_frame(clean, width, height)
    body = axes(frame, x_ticks, y_ticks, x_label, y_label) + legend(list(clean), frame)
    for i, (name, pts) in enumerate(clean.items()):
        body += [_marker(frame, name, x, y, PALETTE[i % len(PALETTE)], 5) for x, y in pts]
    return svg(title, body, width, height)


def _bars(frame: Frame, groups: Sequence[tuple[str, Sequence[tuple[str, float, str]]]],
          names: Sequence[str]) -> list[str]:
    """Side-by-side bars (class "bar") per group slot: (series, value, tooltip) from the zero line."""
    band = (frame.width - frame.left - frame.right) / len(groups)
    bar = band * 0.8 / len(names)
    zero = frame.y(max(frame.y_lo, min(0.0, frame.y_hi)))
    out = []
    for g, (_, values) in enumerate(groups):
        for name, value, tip in values:
            s = names.index(name)
            x, y = frame.left + band * (g + 0.1) + bar * s, frame.y(value)
            out.append(f'<rect class="bar" x="{x:.1f}" y="{min(y, zero):.1f}" width="{bar:.1f}" '
                       f'height="{abs(zero - y):.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                       f'<title>{escape(tip)}</title></rect>')
    return out


def bar_chart(groups: Mapping[str, Mapping[str, float]], title: str = "", x_label: str = "",
              y_label: str = "", width: int = WIDTH, height: int = HEIGHT) -> str:
    """Grouped bars: one group per key of `groups` (its name under the axis), one bar per finite
    value in it, coloured by series name. The value axis always includes zero."""
    clean = {g: {s: float(v) for s, v in values.items() if finite(v)} for g, values in groups.items()}
    names = list(dict.fromkeys(s for values in clean.values() for s in values))
    if not names:
        return no_data(title, width, height)
    y_lo, y_hi, y_ticks = axis_range([v for values in clean.values() for v in values.values()],
                                     include_zero=True)
    frame = Frame(0.0, float(len(clean)), y_lo, y_hi, width, height)
    chars = max(3, int((width - frame.left - frame.right) / len(clean) / 6.5))
    x_names = [(i + 0.5, g if len(g) <= chars else g[:chars - 1] + "…") for i, g in enumerate(clean)]
    slots = [(g, [(s, v, f"{g} · {s}: {number(v)}") for s, v in values.items()])
             for g, values in clean.items()]
    body = axes(frame, [], y_ticks, x_label, y_label, x_names) + legend(names, frame)
    return svg(title, body + _bars(frame, slots, names), width, height)


def histogram_counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts per bin [edges[i], edges[i+1]), the last bin closed (numpy.histogram's convention)."""
    counts = [0] * (len(edges) - 1)
    lo, hi = edges[0], edges[-1]
    for v in values:
        if finite(v) and lo <= v <= hi:
            i = min(int((v - lo) / (hi - lo) * len(counts)), len(counts) - 1)
            counts[i] += 1
    return counts


def bin_edges(values: Sequence[float], bins: int) -> list[float]:
    """`bins` equal-width bins over the finite values' [min, max] (min +- 0.5 if all are equal)."""
    clean = [float(v) for v in values if finite(v)]
    lo, hi = min(clean), max(clean)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return [lo + (hi - lo) * i / bins for i in range(bins)] + [hi]


def histogram(values_by_name: Mapping[str, Sequence[float]], bins: int = 20, title: str = "",
              x_label: str = "", y_label: str = "count", width: int = WIDTH,
              height: int = HEIGHT) -> str:
    """Histograms of several samples on shared bins, side by side in each bin (class "bar")."""
    clean = {n: [v for v in vs if finite(v)] for n, vs in values_by_name.items()}
    clean = {n: vs for n, vs in clean.items() if vs}
    if not clean or bins < 1:
        return no_data(title, width, height)
    edges = bin_edges([v for vs in clean.values() for v in vs], bins)
    counts = {n: histogram_counts(vs, edges) for n, vs in clean.items()}
    y_lo, y_hi, y_ticks = axis_range([c for cs in counts.values() for c in cs], include_zero=True)
    frame = Frame(edges[0], edges[-1], y_lo, y_hi, width, height)
    slots = [(str(i), [(n, float(cs[i]), f"{n}: {cs[i]} in [{number(edges[i])}, {number(edges[i + 1])}"
                        + ("]" if i == bins - 1 else ")")) for n, cs in counts.items()])
             for i in range(bins)]
    body = axes(frame, ticks_within(edges[0], edges[-1]), y_ticks, x_label, y_label)
    return svg(title, body + legend(list(clean), frame) + _bars(frame, slots, list(clean)), width, height)
