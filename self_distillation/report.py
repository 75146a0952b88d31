"""``executor-report``: evaluation results (+ the GRPO reward curve) -> markdown and plots.

Reads ``results.json`` / ``worldtasks.jsonl`` / ``closed_loop.jsonl`` written by
``executor-evaluate`` and, if given, the ``metrics.jsonl`` of ``executor-grpo``; writes
``report.md`` with the tables, the issue's done-when checks, matplotlib plots (PNG) and
links to the sample videos (with frame strips inline).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from executor_core.atomic_io import atomic_path, write_bytes_atomic
from executor_core.config_cli import cli_main, configure_cli_logging, parse_config
from self_distillation.task_items import read_jsonl

logger = logging.getLogger(__name__)


@dataclass
class ReportConfig:
    eval_dir: Path = Path("outputs/method_sim/eval")
    grpo_metrics: Path | None = Path("outputs/method_sim/grpo/metrics.jsonl")
    output: Path | None = None  # report.md; None = eval_dir/report.md
    smoothing_window: int = 10  # steps, moving average of the reward curve

    def __post_init__(self) -> None:
        if self.smoothing_window <= 0:
            raise ValueError(f"smoothing_window must be > 0, got {self.smoothing_window!r}")


PRESETS: dict[str, ReportConfig] = {
    "debug": ReportConfig(
        eval_dir=Path("outputs/method_debug/eval"),
        grpo_metrics=Path("outputs/method_debug/grpo/metrics.jsonl"),
        smoothing_window=1,
    ),
    "sim": ReportConfig(),
}


def _bar_with_ci(ax: Any, summaries: dict[str, dict], title: str) -> None:
    names = list(summaries)
    rates = np.array([summaries[n]["rate"] for n in names])
    low = rates - np.array([summaries[n]["ci95_low"] for n in names])
    high = np.array([summaries[n]["ci95_high"] for n in names]) - rates
    ax.bar(range(len(names)), rates, yerr=[low, high], capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate (95 % Wilson CI)")
    ax.set_title(title)


def plot_results(
    results: dict[str, Any], metrics: list[dict] | None, window: int, out_dir: Path
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    world, closed = results["worldtasks"], results["closed_loop"]
    fig, ax = plt.subplots(figsize=(6, 4))
    _bar_with_ci(ax, world, "WorldTasks-style judged success")
    fig.tight_layout()
    paths.append(out_dir / "worldtasks.png")
    _save_png(fig, paths[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(world)
    x = np.arange(len(names))
    for k, (key, label) in enumerate(
        (("instruction_following", "instruction following"), ("physics", "physics plausibility"))
    ):
        ax.bar(
            x + (k - 0.5) * 0.38,
            [world[n][key] for n in names],
            0.38,
            yerr=[world[n][f"{key}_sem"] for n in names],
            capsize=3,
            label=label,
        )
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("DreamGen-Bench-style scores (mean ± s.e.m.)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / "dreamgen_scores.png")
    _save_png(fig, paths[-1])
    plt.close(fig)

    if closed:
        fig, ax = plt.subplots(figsize=(6, 4))
        _bar_with_ci(ax, closed, "Closed-loop simulator success")
        fig.tight_layout()
        paths.append(out_dir / "closed_loop.png")
        _save_png(fig, paths[-1])
        plt.close(fig)

    if metrics:
        steps = np.array([m["step"] for m in metrics])
        reward = np.array([m["reward_mean"] for m in metrics])
        success = np.array([m.get("success_rate", np.nan) for m in metrics])
        kernel = np.ones(min(window, len(reward))) / min(window, len(reward))
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(steps, reward, alpha=0.3, color="#4c72b0", label="reward (per step)")
        ax.plot(
            steps[len(kernel) - 1 :],
            np.convolve(reward, kernel, mode="valid"),
            color="#4c72b0",
            label=f"reward ({len(kernel)}-step mean)",
        )
        ax.plot(
            steps[len(kernel) - 1 :],
            np.convolve(success, kernel, mode="valid"),
            color="#dd8452",
            label="judged success",
        )
        ax.set_xlabel("GRPO step")
        ax.set_ylim(0, 1)
        ax.set_title("GRPO reward curve")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(out_dir / "grpo_reward.png")
        _save_png(fig, paths[-1])
        plt.close(fig)
    return paths


def _save_png(fig: Any, path: Path) -> None:
    """Write the figure whole or not at all."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


def _fmt_rate(s: dict) -> str:
    return (
        f"{100 * s['rate']:.1f} % [{100 * s['ci95_low']:.1f}, {100 * s['ci95_high']:.1f}]"
        f" ({s['successes']}/{s['n']})"
    )


def render_markdown(
    results: dict[str, Any],
    rows: list[dict],
    closed_rows: list[dict],
    plots: list[Path],
    out_dir: Path,
) -> str:
    lines = [
        "# Method evaluation",
        "",
        f"{results['items']} held-out items x {results['samples_per_item']} samples, "
        f"judge: `{results['judge']}`.",
        "",
        "## WorldTasks-style judged success and DreamGen-Bench-style scores",
        "",
        "| condition | judged success (95 % CI) | instruction following | physics |",
        "|---|---|---|---|",
    ]
    for name, s in results["worldtasks"].items():
        lines.append(
            f"| {name} | {_fmt_rate(s)} | {s['instruction_following']:.3f} | {s['physics']:.3f} |"
        )
    if results["closed_loop"]:
        lines += [
            "",
            "## Closed-loop simulator success",
            "",
            "| condition | success (95 % CI) | mean steps | mean replans |",
            "|---|---|---|---|",
        ]
        for name, s in results["closed_loop"].items():
            lines.append(
                f"| {name} | {_fmt_rate(s)} | {s['mean_steps']:.1f} | {s['mean_replans']:.1f} |"
            )
    lines += [
        "",
        "## Done-when checks",
        "",
        "```json",
        json.dumps(results["done_when"], indent=2),
        "```",
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{p.stem}]({p.relative_to(out_dir)})" for p in plots]
    lines += ["", "## Sample videos", ""]
    for r in rows:
        if "video" in r:
            verdict = "success" if r["success"] else "failure"
            lines.append(
                f'- **{r["condition"]}** `{r["item_id"]}` "{r["prompt"]}": '
                f"{verdict} — [{r['video']}]({r['video']})"
            )
            lines.append(f"  ![]({r['strip']})")
    for r in closed_rows:
        if "executed_video" in r:
            links = f"[executed]({r['executed_video']})"
            if "imagined_video" in r:
                links += f", [imagined]({r['imagined_video']})"
            lines.append(
                f"- closed loop **{r['condition']}** `{r['item_id']}` "
                f'"{r["prompt"]}": {"success" if r["success"] else "failure"} — '
                f"{links}"
            )
    return "\n".join(lines) + "\n"


def run_report(cfg: ReportConfig) -> Path:
    eval_dir = Path(cfg.eval_dir)
    results = json.loads((eval_dir / "results.json").read_text())
    rows = read_jsonl(eval_dir / "worldtasks.jsonl")
    closed_path = eval_dir / "closed_loop.jsonl"
    closed_rows = read_jsonl(closed_path) if closed_path.is_file() else []
    metrics = None
    if cfg.grpo_metrics is not None:
        if Path(cfg.grpo_metrics).is_file():
            metrics = read_jsonl(Path(cfg.grpo_metrics))
        else:
            logger.warning(
                "no GRPO metrics at %s: the report has no reward curve", cfg.grpo_metrics
            )
    plots = plot_results(results, metrics, cfg.smoothing_window, eval_dir)
    out = Path(cfg.output or eval_dir / "report.md")
    write_bytes_atomic(out, render_markdown(results, rows, closed_rows, plots, eval_dir).encode())
    return out


@cli_main("executor-report")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(ReportConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    print(run_report(cfg))


if __name__ == "__main__":
    sys.exit(main())
