"""The ToolAlpaca reader on both evaluation files and on broken copies; the judged-solution parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi.data import DataError
from umi.data.toolalpaca import ASK_USER, is_placeholder, load_toolalpaca, parse_golden_arguments
from umi.data.toolalpaca_solutions import load_judged, published_statistics
from umi.tools.specs import from_openapi


@pytest.fixture(scope="module")
def root(shared_data: Path) -> Path:
    return shared_data / "toolalpaca"


def test_both_files_load_with_their_counts_and_routes(root: Path) -> None:
    sim = load_toolalpaca(root / "data/eval_simulated.json", from_openapi)
    real = load_toolalpaca(root / "data/eval_real.json", from_openapi)
    assert (len(sim), sum(len(t.tasks) for t in sim)) == (10, 100)
    assert (len(real), sum(len(t.tasks) for t in real)) == (11, 114)
    nager = real[0]
    spec = nager.spec("PublicHolidayPublicHolidaysV3")
    assert spec is not None
    assert (spec.meta["path"], spec.meta["method"]) == ("/api/v3/PublicHolidays/{year}/{countryCode}", "GET")
    assert spec.meta["server"] == "https://date.nager.at/"
    assert nager.tasks[0].golden[0].action == "PublicHolidayIsTodayPublicHoliday"
    assert nager.tasks[0].golden[0].arguments == {"countryCode": "CN"}
    # every golden step names one of its tool's specs (or ToolAlpaca's ask-the-user step)
    for tool in sim + real:
        names = {s.name for s in tool.specs}
        assert all(s.action in names | {ASK_USER} for t in tool.tasks for s in t.golden)


def test_repairs_are_recorded_not_silent(root: Path) -> None:
    real = {t.name: t for t in load_toolalpaca(root / "data/eval_real.json", from_openapi)}
    aviation = real["AviationAPI"]
    assert aviation.spec("weather_metar_get") is not None  # a path the released document nests in another
    assert any("/weather/metar" in r for r in aviation.repairs)
    beacon = real["CurrencyBeacon"].tasks[4]
    assert beacon.golden[0].arguments["symbols"] == ["EUR", "GBP"]
    assert beacon.repairs == ["step 0: duplicated key written twice in a row"]
    sim = {t.name: t for t in load_toolalpaca(root / "data/eval_simulated.json", from_openapi)}
    auth0 = sim["Auth0"].tasks
    assert auth0[10].golden[1].arguments == {
        "userId": "${userId from authenticateUser}",
        "accessToken": "${accessToken from authenticateUser}",
    }
    assert auth0[11].golden[1].optional and auth0[11].golden[1].action == "updateUserProfile"


def test_golden_placeholders() -> None:
    args, repairs = parse_golden_arguments('{"a": ${x from f}", "b": "{start date}", "c": [${p}], "d": 2}')
    assert args == {"a": "${x from f}", "b": "${start date}", "c": ["${p}"], "d": 2}
    assert all(is_placeholder(args[k]) for k in "ab") and not is_placeholder(args["d"])
    assert repairs == ["unquoted ${…} placeholder quoted"]


def _broken(tmp_path: Path, root: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    data = json.loads((root / "data/eval_simulated.json").read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d[1]["Golden_Answers"][3].__setitem__(0, {"Action": "nope", "Action_Input": "{}"}),
            r"broken.json: tool 1 \(AniAPI\), instruction 3, step 0: unknown function 'nope'",
        ),
        (
            lambda d: d[2]["Golden_Answers"][5][0].__setitem__("Action_Input", '{"ip": [1,'),
            r"tool 2 \(AbuseIPDB\), instruction 5, step 0: Action_Input is not JSON",
        ),
        (lambda d: d[0]["Instructions"].pop(), r"tool 0 \(Axolotl\): Instructions and Golden_Answers"),
        (lambda d: d[3].pop("Documentation"), r"tool 3 \(Améthyste\): missing field\(s\) Documentation"),
        (lambda d: d[4].__setitem__("Documentation", "{not json"), r"tool 4 \(Auth0\): Documentation is not JSON"),
        (
            lambda d: d[0]["Function_Projection"].__setitem__("ghost", ["/ghost", "get"]),
            r"tool 0 \(Axolotl\): Function_Projection names operations the document lacks: ghost",
        ),
        (lambda d: d[0]["Instructions"].__setitem__(2, ""), r"tool 0 \(Axolotl\), instruction 2: empty"),
    ],
)
def test_broken_copies_name_file_tool_and_instruction(tmp_path: Path, root: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=message):
        load_toolalpaca(_broken(tmp_path, root, edit), from_openapi)


def test_judged_solutions_parse(root: Path) -> None:
    sols = load_judged(root / "evalution_outputs/ToolAlpaca7b.json")
    assert len(sols) == 100 and sum(s.missing_input for s in sols) == 1
    first = sols[0]
    assert (first.tool, first.process, first.response) == ("Axolotl", "Yes", "Yes")
    assert first.standard == [("getRandomAxolotlImage", "{}")]
    call = first.calls[0]
    assert (call.function, call.arguments, call.status) == ("getRandomAxolotlImage", {}, 200)
    assert json.loads(call.response)["url"].endswith("axolotl1.jpg")
    assert first.final_response.startswith("Here is a random picture")
    errors = [c for s in sols for c in s.calls if c.status == 404]
    assert errors and not any("You should choose one of" in c.response for c in errors)
    stats = published_statistics(root / "evalution_outputs/ToolAlpaca13b.json")
    assert (stats["process"]["Yes"], stats["response"]["Yes"], stats["both"]) == (68, 73, 68)
