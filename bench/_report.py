"""Turning samples into a table, a JSON file and a bar chart."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Metric:
    key: str  # "<scenario>.<field>"
    label: str
    unit: str
    better: str  # "lower", "higher" or "" (information only)
    words: tuple[str, str] = ("faster", "slower")

    @property
    def scenario(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def field(self) -> str:
        return self.key.split(".", 1)[1]


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else None


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def compare(metric: Metric, ours: float | None, other: float | None) -> str:
    """'12x faster' style: how ours does against one peer on this metric."""
    if ours is None or other is None or not metric.better:
        return ""
    good, bad = metric.words
    # gain > 1 means ours is better
    num, den = (other, ours) if metric.better == "lower" else (ours, other)
    if num == den:
        return "same"
    if den == 0:
        return f"{good} (ours 0)" if metric.better == "lower" else f"{good} (peer 0)"
    if num == 0:
        return f"{bad} (peer 0)" if metric.better == "lower" else f"{bad} (ours 0)"
    ratio = num / den
    if 0.95 <= ratio <= 1.05:
        return "about the same"
    if ratio > 1:
        return f"{ratio:.3g}x {good}"
    return f"{1 / ratio:.3g}x {bad}"


def summarize(metrics: list[Metric], scenarios: dict, managers: list[str]) -> dict:
    """Per metric and manager: every sample (one per repetition) and their median."""
    table = {}
    for metric in metrics:
        samples = {}
        for name in managers:
            runs = scenarios.get(metric.scenario, {}).get(name, [])
            samples[name] = [run[metric.field] for run in runs if metric.field in run]
        table[metric.key] = {
            **asdict(metric),
            "samples": samples,
            "medians": {name: median(values) for name, values in samples.items()},
        }
    return table


def print_table(summary: dict, managers: list[str]) -> str:
    peers = [name for name in managers if name != "ours"]
    head = ["metric", *managers] + ([f"ours vs {p}" for p in peers] if "ours" in managers else [])
    rows = [head]
    for entry in summary.values():
        metric = Metric(
            entry["key"], entry["label"], entry["unit"], entry["better"], tuple(entry["words"])
        )
        medians = entry["medians"]
        row = [f"{metric.label} ({metric.unit})", *(fmt(medians[m]) for m in managers)]
        if "ours" in managers:
            row += [compare(metric, medians["ours"], medians[p]) for p in peers]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    text = "\n".join(lines)
    print(text)
    return text


def _plain(value):
    """NaN and infinities become null, so the file stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(payload), indent=1, default=str) + "\n")


def write_chart(path: Path, summary: dict, managers: list[str]) -> bool:
    """One log-scale bar group per metric; False (with a message) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)")
        return False
    entries = [e for e in summary.values() if any(v for v in e["medians"].values())]
    cols = 4
    rows = max(1, math.ceil(len(entries) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    colors = {"ours": "#2a9d8f", "circus": "#e76f51", "supervisor": "#8d99ae"}
    for ax, entry in zip(axes.flat, entries, strict=False):
        values = [entry["medians"][m] or 0 for m in managers]
        bars = ax.bar(
            managers,
            [v if v > 0 else float("nan") for v in values],
            color=[colors.get(m, "#999") for m in managers],
        )
        ax.set_yscale("log")
        positive = [v for v in values if v > 0]
        if positive:  # a common base well below the smallest bar, room above the tallest
            ax.set_ylim(min(positive) / 4, max(positive) * 2.5)
        note = {"lower": "lower is better", "higher": "higher is better"}.get(entry["better"], "")
        ax.set_title(
            f"{entry['label']}\n({entry['unit']}; {note})" if note else entry["label"], fontsize=9
        )
        for bar, value in zip(bars, values, strict=True):
            if value > 0:
                ax.annotate(
                    fmt(value),
                    (bar.get_x() + bar.get_width() / 2, value),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(entries) :]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
