import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from PIL import Image

from tasks.evaluation.metrics import SampleResult, aggregate
from tasks.evaluation.report import ACCURACY_PNG, REPORT_HTML, TERMINATIONS_PNG, write_report

SVG_NS = "{http://www.w3.org/2000/svg}"


def _samples() -> list[SampleResult]:
    return [
        SampleResult("q1", "gaia", "level-1", 0, True, "llm", "answer", 3, 2, 50),
        SampleResult("q1", "gaia", "level-1", 1, False, "judge_error", "answer", 3, 2, 50),
        SampleResult("q2", "hle", "Math", 0, False, "llm", "max_turns", 8, 7, 400),
        SampleResult("q2", "hle", "Math", 1, True, "llm", "answer", 5, 4, 200),
    ]


def test_report_has_tables_and_real_plots(tmp_path):
    path = write_report(aggregate(_samples(), k=2), tmp_path / "r", "Eval", {"checkpoint": "ck1"})
    text = path.read_text()
    assert "- **checkpoint**: ck1" in text
    assert "| gaia | all | 1 | 2 | 100.0 | 50.0 | 100.0 | 1 | 0 |" in text
    assert "| hle | max_turns | 1 |" in text
    for name in (ACCURACY_PNG, TERMINATIONS_PNG):
        with Image.open(tmp_path / "r" / name) as img:
            assert img.format == "PNG" and img.size[0] > 100


def test_report_refuses_empty_results(tmp_path):
    with pytest.raises(ValueError, match="no results"):
        write_report([], tmp_path)


class _Rows(HTMLParser):
    """The cell texts of every table row in a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_html_report_has_the_tables_and_inline_svg_plots(tmp_path):
    context = {"checkpoint": "ck<1>", "curriculum": "mixed"}
    write_report(aggregate(_samples(), k=2), tmp_path / "r", "Eval & more", context)
    text = (tmp_path / "r" / REPORT_HTML).read_text()
    assert "<title>Eval &amp; more</title>" in text and "<b>checkpoint</b>: ck&lt;1&gt;" in text
    assert "<img" not in text  # self-contained: nothing to fetch beside the page
    rows = _Rows(text).rows
    assert rows[0][:7] == [
        "benchmark", "capability", "questions", "samples", "pass@1", "avg@2", "pass@2",
    ]  # fmt: skip
    assert ["gaia", "all", "1", "2", "100.0", "50.0", "100.0", "1", "0"] in [r[:9] for r in rows]
    assert ["hle", "max_turns", "1"] in rows  # termination reasons
    svgs = re.findall(r"<svg .*?</svg>", text, flags=re.DOTALL)
    assert len(svgs) == 2
    accuracy, terminations = (ET.fromstring(svg) for svg in svgs)  # well-formed inline SVG
    texts = [" ".join(t.itertext()) for t in accuracy.iter(f"{SVG_NS}text")]
    assert {"gaia", "hle", "pass@1", "avg@2", "pass@2"} <= set(texts)
    assert len(list(accuracy.iter(f"{SVG_NS}path"))) > 6  # bars, axes and ticks were drawn
    labels = {" ".join(t.itertext()) for t in terminations.iter(f"{SVG_NS}text")}
    assert {"answer", "max_turns"} <= labels
