from __future__ import annotations

import json

import pytest

from self_distillation.proposal_schema import (
    ProposalRejectedError,
    TaskProposal,
    find_unsafe_term,
    parse_proposal,
    parse_steps,
)

GOOD = {
    "task": "Put the red cube in the bowl",
    "solution": ["1. Move above the red cube.", "2. Grasp it.", "3. Drop it in the bowl."],
    "success": "The red cube is inside the bowl.",
}


def _reason(raw: str) -> str:
    with pytest.raises(ProposalRejectedError) as info:
        parse_proposal(raw)
    return info.value.reason


def test_good_proposal_round_trips() -> None:
    p = parse_proposal(json.dumps(GOOD), source="unit")
    assert p.task_prompt == "Put the red cube in the bowl"
    assert p.solution_steps == ("Move above the red cube.", "Grasp it.", "Drop it in the bowl.")
    assert p.solution_text.splitlines()[2] == "3. Drop it in the bowl."
    assert TaskProposal.from_dict(p.to_dict()) == p


def test_numbered_text_solution_parses() -> None:
    assert parse_steps("1. a\n\n2) b\n") == ("a", "b")


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ({"task": ""}, "empty_field"),
        ({"task": "Put " + "the red cube " * 10}, "task_prompt_too_long"),
        ({"task": "a\nb"}, "task_multiline"),
        ({"solution": ["1. only one step"]}, "step_count"),
        ({"solution": "1. a\n3. b"}, "step_numbering"),
        ({"solution": "1. a\nb"}, "unnumbered_step"),
        ({"solution": [f"{i}. s" for i in range(1, 13)]}, "step_count"),
        ({"success": 3}, "wrong_type"),
        ({"success": "see http://x.y"}, "url"),
        ({"task": "Throw the cube at the wall"}, "unsafe_violent_motion"),
        ({"task": "Hand the cube to the person"}, "unsafe_people_or_animals"),
        ({"solution": ["1. Grasp the cup.", "2. Pour the water out."]}, "unsafe_liquids"),
        ({"success": "The cube lies on the floor."}, "unsafe_out_of_workspace"),
    ],
)
def test_bad_fields_are_rejected_with_reason(mutation: dict, reason: str) -> None:
    assert _reason(json.dumps({**GOOD, **mutation})) == reason


def test_structural_failures() -> None:
    assert _reason("") == "empty_output"
    assert _reason("I cannot help with that.") == "not_json"
    assert _reason('{"task": "x", "solution": [') == "not_json"
    assert _reason(json.dumps({"task": "x"})) == "missing_field"


def test_deny_list_matches_whole_words_only() -> None:
    assert find_unsafe_term("pick the cube") is None
    assert find_unsafe_term("Stack the Hitachi box") is None  # "hit" inside a word
    assert find_unsafe_term("Push it off the edge") == ("out_of_workspace", "off the edge")
    assert find_unsafe_term("rests on the bowl floor") is None
    assert find_unsafe_term("lift the cube off the table") is None


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ProposalRejectedError, match="step_count"):
        TaskProposal("Push the cube", ("one",), "moved")


def test_inline_numbered_solution_with_numbers_inside_steps() -> None:
    text = "1. Lift it 10 cm. 2. Move 3 cm left. 3. Release."
    assert parse_steps(text) == ("Lift it 10 cm.", "Move 3 cm left.", "Release.")
    assert parse_steps("1. within 1.5 cm 2. done") == ("within 1.5 cm", "done")
    with pytest.raises(ProposalRejectedError, match="unnumbered_step"):
        parse_steps("First grasp. 1. a 2. b")


def test_simulator_task_family_passes_the_schema() -> None:
    from executor_sim.tasks import TASK_FAMILIES, SceneInfo, make_task
    from self_distillation.task_proposal import proposal_from_task_dict

    scene = SceneInfo(
        cubes=("red", "green"),
        cube_poses={"red": (0.2, -0.1, 0.015, 0.0), "green": (0.25, 0.1, 0.015, 0.0)},
        bowl_xy=(0.16, 0.0),
        mat_xy=(0.28, 0.0),
    )
    for family in TASK_FAMILIES:
        task = make_task(family, "red", "green", scene)
        p = proposal_from_task_dict(task.to_json(), source="sim")
        assert p.task_prompt == task.prompt
        assert len(p.solution_steps) in (5, 6)
        assert p.solution_steps[0].startswith("The gripper")
        assert p.metadata["task_family"] == family
