"""The benchmark's report: ``report.md``, bar plots with intervals, and frame strips.

A strip puts the imagined video (top row) over what the arm did when that video was
executed (bottom row, resampled to the same frame count), so an imagination that the arm
cannot follow is visible at a glance.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from executor_core.atomic_io import atomic_path, write_text_atomic
from self_distillation.task_items import write_png

logger = logging.getLogger(__name__)
_SCALE = 2  # strip pixels per frame pixel


def _row(frames: np.ndarray) -> np.ndarray:
    big = [
        cv2.resize(f, None, fx=_SCALE, fy=_SCALE, interpolation=cv2.INTER_NEAREST) for f in frames
    ]
    return np.concatenate(big, axis=1)


def _label(width: int, text: str) -> np.ndarray:
    bar = np.full((18, width, 3), 255, dtype=np.uint8)
    cv2.putText(bar, text[:160], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    return bar


def write_strip(
    path: Path, imagined: np.ndarray, executed: np.ndarray, title: str, row: dict[str, Any]
) -> None:
    """Imagined frames over executed frames (resampled to the same count), labelled."""
    write_png(path, strip_image(imagined, executed, title, row))


def strip_image(
    imagined: np.ndarray, executed: np.ndarray, title: str, row: dict[str, Any]
) -> np.ndarray:
    """:func:`write_strip`'s image: (H, W, 3) uint8."""
    idx = np.round(np.linspace(0, len(executed) - 1, len(imagined))).astype(int)
    top, bottom = _row(imagined), _row(executed[idx])
    verdict = (
        f"judged {row.get('judged_success')} (task {row.get('task', 0):.2f} agent "
        f"{row.get('agent', 0):.2f} consistency {row.get('consistency', 0):.2f}) | executed "
        f"{row.get('executed_success')} | closed loop {row.get('closed_loop_success')}"
    )
    image = np.concatenate(
        [
            _label(top.shape[1], title),
            _label(top.shape[1], "imagined"),
            top,
            _label(top.shape[1], "executed | " + verdict),
            bottom,
        ]
    )
    return image


def _bar_plot(path: Path, results: dict[str, Any], splits: tuple[str, ...], conditions) -> None:
    metrics = ("judged_success", "executed_success", "closed_loop_success")
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 4), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        by_condition = results["splits"].get(split, {})
        names = [c for c in conditions if c in by_condition]
        x = np.arange(len(names))
        for k, metric in enumerate(metrics):
            rates = np.array([by_condition[c][metric] for c in names])
            ci = np.array([by_condition[c]["ci95"][metric] for c in names]).reshape(-1, 2)
            err = np.stack([rates - ci[:, 0], ci[:, 1] - rates])
            ax.bar(x + (k - 1) * 0.27, rates, 0.27, yerr=err, capsize=2, label=metric)
        ax.set_xticks(x, names, rotation=35, ha="right", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(split)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}"


def _split_table(by_condition: dict[str, Any], conditions) -> list[str]:
    lines = [
        "| condition | n | task | agent | consistency | judged | executed | closed loop "
        "[95 %] | closed loop by family | judge precision / agreement |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in conditions:
        if c not in by_condition:
            continue
        v = by_condition[c]
        lo, hi = v["ci95"]["closed_loop_success"]
        fam = ", ".join(f"{f} {_pct(r['closed_loop_success'])}" for f, r in v["by_family"].items())
        agr = v["judge_execution_agreement"]
        lines.append(
            f"| {c} | {v['n']} | {v['task']:.2f} | {v['agent']:.2f} | {v['consistency']:.2f} "
            f"| {_pct(v['judged_success'])} | {_pct(v['executed_success'])} "
            f"| **{_pct(v['closed_loop_success'])}** [{_pct(lo)}, {_pct(hi)}] | {fam} "
            f"| {_pct(agr['precision'])} / {_pct(agr['agreement'])} |"
        )
    return lines


def _family_table(by_condition: dict[str, Any], conditions) -> list[str]:
    """Per family: the imagined end state's task score, then judged, executed, closed loop."""
    lines = [
        "| condition | family | n | task score | judged | executed | closed loop |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in conditions:
        for family, v in by_condition.get(c, {}).get("by_family", {}).items():
            lines.append(
                f"| {c} | {family} | {v['n']} | {v['task']:.2f} | {_pct(v['judged_success'])} "
                f"| {_pct(v['executed_success'])} | {_pct(v['closed_loop_success'])} |"
            )
    return lines


def _paired_lines(paired: dict[str, Any]) -> list[str]:
    lines = ["| A - B | split | judged | executed | closed loop |", "|---|---|---|---|---|"]
    for pair, by_split in paired.items():
        for split, table in by_split.items():
            cells = [
                f"{100 * table[m]['diff']:+.1f} [{100 * table[m]['ci95'][0]:+.1f}, "
                f"{100 * table[m]['ci95'][1]:+.1f}]"
                for m in ("judged_success", "executed_success", "closed_loop_success")
            ]
            lines.append(f"| {pair} | {split} | " + " | ".join(cells) + " |")
    return lines


def write_report(out: Path, results: dict[str, Any], splits, conditions) -> Path:
    """``out/report.md`` and ``out/benchmark.png`` from ``benchmark.json``'s content."""
    out = Path(out)
    _bar_plot(out / "benchmark.png", results, tuple(splits), tuple(conditions))
    lines = [
        "# WorldTasks-style sim benchmark",
        "",
        f"Command: `{results.get('command', '')}`",
        "",
        "Rates in %. Closed loop = the full stack through the robot's goal runner with "
        "replanning; executed = the first imagined video executed once; judged = the "
        "execution-aware judge (task, agent and consistency all pass). Judge precision = "
        "P(executes | judged success).",
        "",
        "![rates](benchmark.png)",
        "",
    ]
    for split in splits:
        if split in results["splits"]:
            by_condition = results["splits"][split]
            lines += [f"## {split}", "", *_split_table(by_condition, conditions), ""]
            lines += ["Per family:", "", *_family_table(by_condition, conditions), ""]
    lines += ["## Paired differences (item bootstrap, 95 %)", "", *_paired_lines(results["paired"])]
    if results.get("judge_probes"):
        lines += ["", "## Judge probes (pass rates)", ""]
        lines += [f"- {k}: {100 * v:.1f} %" for k, v in results["judge_probes"].items()]
    strips = sorted((out / "strips").rglob("*.png")) if (out / "strips").is_dir() else []
    if strips:
        lines += ["", "## Imagined (top) vs executed (bottom)", ""]
        lines += [f"![{p.stem}]({p.relative_to(out)})" for p in strips]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    logger.info("wrote %s", path)
    return path
