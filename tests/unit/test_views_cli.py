"""`dmp admin views`: what `rebuild` says and which exit code it gives, without a broker or store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from typer.testing import CliRunner

import cli.views
from services.aggregate.compare import Difference, diff_rows
from services.aggregate.rebuild import RebuildReport

runner = CliRunner()


def report(differences: list[Difference], swapped: bool = False) -> RebuildReport:
    return RebuildReport(live=0, rebuilt=1, group_id="dmp-aggregate-g1", events=42, compared=17,
                         differences=differences, swapped=swapped)


@dataclass
class FakeRebuild:
    report: RebuildReport = field(default_factory=lambda: report([]))
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, settings: Any, client: Any, **options: Any) -> RebuildReport:
        self.calls.append(options)
        return self.report


@pytest.fixture
def rebuilt(monkeypatch: pytest.MonkeyPatch) -> FakeRebuild:
    fake = FakeRebuild()
    monkeypatch.setattr("services.aggregate.rebuild.rebuild", fake)
    return fake


def test_rebuild_without_differences_exits_0(rebuilt: FakeRebuild) -> None:
    result = runner.invoke(cli.views.views_app, ["rebuild"])
    assert result.exit_code == 0, result.output
    assert "no differences" in result.output and "42 events replayed" in result.output
    assert rebuilt.calls[0]["swap"] is False


def test_rebuild_lists_differences_and_exits_1_when_not_swapped(rebuilt: FakeRebuild) -> None:
    rebuilt.report = report([Difference("seizures", "AFG:2024:heroin:kg", "differs", {"cases": (9, 2)}),
                             Difference("prices", "AFG:2024:heroin:retail:USD", "only_live")])
    result = runner.invoke(cli.views.views_app, ["rebuild", "--rounds", "2"])
    assert result.exit_code == 1
    assert "2 rows differ" in result.output and "cases: 9 → 2" in result.output
    assert "only in live" in result.output
    assert rebuilt.calls[0]["rounds"] == 2


def test_rebuild_with_swap_exits_0_and_names_the_new_generation(rebuilt: FakeRebuild) -> None:
    rebuilt.report = report([Difference("seizures", "k", "only_rebuilt")], swapped=True)
    result = runner.invoke(cli.views.views_app, ["rebuild", "--swap"])
    assert result.exit_code == 0, result.output
    assert "generation 1 is live" in result.output and "dmp admin views drop 0" in result.output
    assert rebuilt.calls[0]["swap"] is True


def test_rows_differ_by_presence_and_by_figure() -> None:
    live: dict[str, dict[str, Any]] = {"a": {"cases": 1, "unit": "kg"}, "b": {"cases": 2}, "c": {"cases": 3}}
    rebuilt: dict[str, dict[str, Any]] = {"a": {"cases": 1, "unit": "kg"}, "b": {"cases": 5}, "d": {"cases": 4}}
    assert diff_rows("seizures", live, rebuilt) == [
        Difference("seizures", "b", "differs", {"cases": (2, 5)}), Difference("seizures", "c", "only_live"),
        Difference("seizures", "d", "only_rebuilt")]


def test_every_command_has_help() -> None:
    for command in ("rebuild", "status", "drop"):
        result = runner.invoke(cli.views.views_app, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
