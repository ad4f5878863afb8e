"""The table plumbing of ``python -m bench``: ratios, rendering, results files, the CLI's checks."""

from __future__ import annotations

import json

import pytest

from bench import __main__ as cli
from bench.bench_dag_parse import describe_split
from bench.common import Row, render_markdown, render_table, write_results


def test_ratio_is_cost_over_baseline_or_speedup() -> None:
    cost = Row("e2e", ours=50.0, baseline=20.0, unit="s", goal="≤ 2.5×", met=True)
    speed = Row("shards", ours=10.0, baseline=17.0, unit="s", goal="≥ 1.7× faster", met=True, speedup=True)
    assert cost.ratio == pytest.approx(2.5)
    assert speed.ratio == pytest.approx(1.7)


def test_table_has_the_issue_columns_and_every_row() -> None:
    rows = [Row("offline end-to-end", 50.0, 20.0, "s", "≤ 2.5×", False),
            Row("evaluate: peak RSS", 700.0, 2100.0, "MiB", "≤ 1 GiB", True, detail="max 710 MiB"),
            Row("InvokeEndpoint p50", 4.5, 0.4, "ms", "-", None)]
    lines = render_table(rows).splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["figure", "ours (median)", "baseline (median)",
                                                        "ratio", "goal", "met?"]
    assert "50.0 s" in lines[2] and "20.0 s" in lines[2] and "2.50×" in lines[2] and lines[2].endswith("NO")
    assert "700 MiB" in lines[3] and "yes (max 710 MiB)" in lines[3]
    assert "4.50 ms" in lines[4] and lines[4].endswith("-")
    assert render_markdown(rows).count("\n") == len(rows) + 1


def test_results_files(tmp_path) -> None:
    rows = [Row("shards", 10.0, 17.0, "s", "≥ 1.7× faster", True, speedup=True, runs={"ours": [10.0]})]
    json_path, md_path = write_results(rows, ["a note"], {"repeat": 1}, tmp_path)
    payload = json.loads(json_path.read_text())
    assert payload["rows"][0]["ratio"] == pytest.approx(1.7)
    assert payload["rows"][0]["runs"] == {"ours": [10.0]}
    assert payload["notes"] == ["a note"]
    assert "| shards | 10.0 s | 17.0 s | 1.70× faster | ≥ 1.7× faster | yes |" in md_path.read_text()


def test_dag_parse_profile_names_the_split_and_the_costly_functions() -> None:
    ours = {"imports_s": 1.2, "build_s": 0.25, "top": [[0.155, "bases/operator.py:apply_defaults"]]}
    bare = {"imports_s": 1.1, "build_s": 0.05, "top": []}
    assert describe_split(ours, bare) == (
        "DAG parse profile: top-level imports 1200 ms vs 1100 ms bare; building the DAG (DagBag "
        "with imports cached) 250 ms vs 50 ms bare (under cProfile); its top functions by "
        "cumulative time: bases/operator.py:apply_defaults 155 ms")


def test_only_rejects_unknown_names() -> None:
    assert cli.parse_only("evaluate, sharding") == ["evaluate", "sharding"]
    with pytest.raises(Exception, match="unknown benchmark nope; choose from pipeline"):
        cli.parse_only("nope")
