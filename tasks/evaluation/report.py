"""The evaluation report: report.md with matplotlib PNG plots beside it, and report.html, one
self-contained page with the same tables and the plots inlined as SVG (what MLflow's artifact
viewer shows)."""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on workers and CI
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from tasks.evaluation.metrics import ALL, GroupMetrics

ACCURACY_PNG = "accuracy.png"
TERMINATIONS_PNG = "terminations.png"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:80em}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:.25em .6em}td.n{text-align:right}"
    "figure{margin:1em 0}svg{max-width:100%;height:auto}"
)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _accuracy_figure(groups: Sequence[GroupMetrics]) -> Figure:
    """Grouped bars per benchmark: pass@1, avg@k, pass@k."""
    rows = [g for g in groups if g.capability == ALL]
    k = rows[0].k if rows else 1
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(rows) + 2), 3.5))
    width = 0.27
    xs = range(len(rows))
    series = [
        ("pass@1", [g.pass_at_1 for g in rows]),
        (f"avg@{k}", [g.avg_at_k for g in rows]),
        (f"pass@{k}", [g.pass_at_k or 0.0 for g in rows]),
    ]
    for j, (label, values) in enumerate(series):
        ax.bar([x + (j - 1) * width for x in xs], [100 * v for v in values], width, label=label)
    ax.set_xticks(list(xs), [g.benchmark for g in rows], rotation=20, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _terminations_figure(groups: Sequence[GroupMetrics]) -> Figure:
    """Stacked bars per benchmark: how episodes ended."""
    rows = [g for g in groups if g.capability == ALL]
    reasons = sorted({r for g in rows for r in g.terminations})
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(rows) + 2), 3.5))
    bottoms = [0.0] * len(rows)
    for reason in reasons:
        values = [g.terminations.get(reason, 0) / g.samples for g in rows]
        ax.bar(range(len(rows)), [100 * v for v in values], bottom=bottoms, label=reason)
        bottoms = [b + 100 * v for b, v in zip(bottoms, values, strict=True)]
    ax.set_xticks(range(len(rows)), [g.benchmark for g in rows], rotation=20, ha="right")
    ax.set_ylabel("episodes (%)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_accuracy(groups: Sequence[GroupMetrics], path: Path) -> Path:
    return _save(_accuracy_figure(groups), path)


def plot_terminations(groups: Sequence[GroupMetrics], path: Path) -> Path:
    return _save(_terminations_figure(groups), path)


def svg_markup(fig: Figure) -> str:
    """The figure as an inline `<svg>` element (text kept as text); closes the figure."""
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :].strip()  # drop the XML prolog and doctype


def _intro(k: int) -> str:
    return (
        "Accuracy in percent. Judge errors count as wrong and are listed separately; "
        f"pass@{k} uses the unbiased estimator over questions with at least {k} samples."
    )


def _metric_table(groups: Sequence[GroupMetrics]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per (benchmark, capability) table; both renderings use it."""
    k = groups[0].k if groups else 1
    header = [
        "benchmark", "capability", "questions", "samples", "pass@1", f"avg@{k}", f"pass@{k}",
        "judge errors", "judge fallbacks", "turns", "tool calls", "tokens",
    ]  # fmt: skip
    return header, [_metric_cells(g) for g in groups]


def _metric_cells(g: GroupMetrics) -> list[str]:
    return [
        g.benchmark, g.capability, str(g.questions), str(g.samples), _pct(g.pass_at_1),
        _pct(g.avg_at_k), _pct(g.pass_at_k), str(g.judge_errors), str(g.judge_fallbacks),
        f"{g.mean_turns:.1f}", f"{g.mean_tool_calls:.1f}", f"{g.mean_tokens:.0f}",
    ]  # fmt: skip


def _termination_rows(groups: Sequence[GroupMetrics]) -> list[list[str]]:
    return [
        [g.benchmark, reason, str(count)]
        for g in groups
        if g.capability == ALL
        for reason, count in g.terminations.items()
    ]


def render_markdown(
    groups: Sequence[GroupMetrics], title: str, context: Mapping[str, str] | None = None
) -> str:
    k = groups[0].k if groups else 1
    lines = [f"# {title}", ""]
    for key, value in (context or {}).items():
        lines.append(f"- **{key}**: {value}")
    if context:
        lines.append("")
    header, rows = _metric_table(groups)
    lines += [
        _intro(k),
        "",
        "| " + " | ".join(header) + " |",
        "|---|---|" + "---:|" * (len(header) - 2),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        "## Termination reasons",
        "",
        "| benchmark | reason | episodes |",
        "|---|---|---:|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _termination_rows(groups)]
    lines += [
        "",
        "## Plots",
        "",
        f"![accuracy per benchmark]({ACCURACY_PNG})",
        "",
        f"![termination reasons]({TERMINATIONS_PNG})",
        "",
    ]
    return "\n".join(lines)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int) -> str:
    """Numbers right-aligned: every column from `text_columns` on."""

    def cell(i: int, value: str) -> str:
        align = ' class="n"' if i >= text_columns else ""
        return f"<td{align}>{html.escape(value)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(
    groups: Sequence[GroupMetrics], title: str, context: Mapping[str, str] | None = None
) -> str:
    """One self-contained page: the Markdown report's tables, the plots as inline SVG."""
    k = groups[0].k if groups else 1
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if context:
        items = "".join(f"<li><b>{esc(key)}</b>: {esc(v)}</li>" for key, v in context.items())
        parts.append(f"<ul>{items}</ul>")
    header, rows = _metric_table(groups)
    parts += [
        f"<p>{esc(_intro(k))}</p>",
        _html_table(header, rows, text_columns=2),
        "<h2>Termination reasons</h2>",
        _html_table(["benchmark", "reason", "episodes"], _termination_rows(groups), 2),
        "<h2>Plots</h2>",
        '<figure id="accuracy">',
        svg_markup(_accuracy_figure(groups)),
        "<figcaption>accuracy per benchmark</figcaption></figure>",
        '<figure id="terminations">',
        svg_markup(_terminations_figure(groups)),
        "<figcaption>termination reasons</figcaption></figure>",
        "</body></html>",
        "",
    ]
    return "\n".join(parts)


def write_report(
    groups: Sequence[GroupMetrics],
    out_dir: Path,
    title: str = "Evaluation report",
    context: Mapping[str, str] | None = None,
) -> Path:
    """Write report.md with its PNG plots and report.html into `out_dir`; returns the
    Markdown path."""
    if not groups:
        raise ValueError("no results to report")
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_accuracy(groups, out_dir / ACCURACY_PNG)
    plot_terminations(groups, out_dir / TERMINATIONS_PNG)
    (out_dir / REPORT_HTML).write_text(render_html(groups, title, context), encoding="utf-8")
    path = out_dir / REPORT_MD
    path.write_text(render_markdown(groups, title, context), encoding="utf-8")
    return path
