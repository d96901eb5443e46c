"""The simulation_interfaces rules of ros_nodes/simulation.py as pure functions (the built
message package, no running graph); the services themselves are tested across processes in
test_ros_nodes.py."""
import math

import numpy as np
from geometry_msgs.msg import Vector3
from simulation_interfaces.msg import Bounds, EntityCategory, EntityFilters, Result
from simulation_interfaces.srv import ResetSimulation, SetEntityState, SetSimulationState

from ros_nodes.simulation import (
    MAX_STEPS,
    PAUSED,
    PLAYING,
    STOPPED,
    Entity,
    Outcome,
    pose_refusal,
    reset_scope,
    select,
    step_refusal,
    transition,
)


def test_state_transitions_follow_the_standard_and_gazebo_where_it_contradicts_itself():
    assert transition(PLAYING, PAUSED).result == Result.RESULT_OK
    assert transition(PAUSED, PLAYING).result == Result.RESULT_OK
    assert transition(PLAYING, STOPPED).result == Result.RESULT_OK
    assert transition(STOPPED, PLAYING).result == Result.RESULT_OK
    assert transition(STOPPED, PAUSED).result == Result.RESULT_OK  # as ros_gz; SetSimulationState.srv says otherwise
    assert transition(PAUSED, PAUSED).result == SetSimulationState.Response.ALREADY_IN_TARGET_STATE
    assert transition(PLAYING, 3).result == Result.RESULT_FEATURE_UNSUPPORTED  # QUITTING: stop the node instead


def test_steps_need_a_paused_simulation_and_a_bounded_count():
    assert step_refusal(PAUSED, 5) is None
    assert "needs PAUSED" in step_refusal(PLAYING, 1).message and "STOPPED" in step_refusal(STOPPED, 1).message
    assert step_refusal(PAUSED, 0).result == step_refusal(PAUSED, MAX_STEPS + 1).result == Result.RESULT_OPERATION_FAILED


def test_reset_scopes_reset_time_or_state_or_both_and_time_needs_a_clock():
    scope = ResetSimulation.Request
    assert reset_scope(scope.SCOPE_DEFAULT, True) == reset_scope(scope.SCOPE_ALL, True) == (True, True)
    assert reset_scope(scope.SCOPE_ALL, False) == (False, True)
    assert reset_scope(scope.SCOPE_TIME, True) == (True, False) and reset_scope(scope.SCOPE_STATE, True) == (False, True)
    assert reset_scope(scope.SCOPE_TIME | scope.SCOPE_STATE, True) == (True, True)
    assert reset_scope(scope.SCOPE_STATE, False) == (False, True)
    no_clock = reset_scope(scope.SCOPE_TIME, False)
    assert no_clock.result == Result.RESULT_FEATURE_UNSUPPORTED and "no simulation clock" in no_clock.message
    spawned = reset_scope(scope.SCOPE_SPAWNED, True)
    assert spawned.result == Result.RESULT_FEATURE_UNSUPPORTED and "spawns no entities" in spawned.message


def test_poses_must_be_finite_unit_and_over_the_table():
    low, high = (-0.5, -0.7, 0.0), (0.9, 0.7, 1.0)
    assert pose_refusal((0.4, 0.1, 0.03), (0, 0, math.sin(0.3), math.cos(0.3)), low, high) is None
    for position, quaternion, why in (((math.nan, 0, 0.1), (0, 0, 0, 1), "NaN or inf"),
                                      ((0.4, 0, 0.1), (0, 0, 0, math.inf), "NaN or inf"),
                                      ((0.4, 0, 0.1), (0, 0, 0, 0), "length 0"),
                                      ((0.4, 0, 0.1), (0, 0, 1, 1), "length 1.41421"),
                                      ((0.4, 0, -0.05), (0, 0, 0, 1), "outside the world"),
                                      ((2.0, 0, 0.1), (0, 0, 0, 1), "outside the world")):
        refusal = pose_refusal(position, quaternion, low, high)
        assert refusal.result == SetEntityState.Response.INVALID_POSE and why in refusal.message, (position, quaternion)


def test_entity_filters_match_names_categories_tags_and_overlap():
    robot, thing = EntityCategory.CATEGORY_ROBOT, EntityCategory.CATEGORY_OBJECT
    entities = {"arm": Entity(robot, ("arm",), ""), "red_cube": Entity(thing, ("rigid",), ""),
                "soft_cube": Entity(thing, ("soft",), "")}
    boxes = {"arm": ((-0.1, -0.1, 0), (0.6, 0.1, 0.6)), "red_cube": ((0.4, 0.2, 0), (0.46, 0.26, 0.06)),
             "soft_cube": ((0.3, -0.3, 0), (0.38, -0.22, 0.08))}
    box_of = lambda name: tuple(map(np.array, boxes[name]))

    def keep(**fields):
        filters = EntityFilters()
        filters.filter = fields.get("filter", "")
        filters.categories = [EntityCategory(category=c) for c in fields.get("categories", [])]
        filters.tags.tags, filters.tags.filter_mode = fields.get("tags", []), fields.get("mode", 0)
        if "bounds" in fields:
            kind, points = fields["bounds"]
            filters.bounds = Bounds(type=kind, points=[Vector3(x=float(x), y=float(y), z=float(z)) for x, y, z in points])
        return select(entities, filters, box_of)

    assert keep() == ["arm", "red_cube", "soft_cube"]
    assert keep(filter="_cube$") == ["red_cube", "soft_cube"] and keep(filter="^red") == ["red_cube"]
    assert keep(categories=[robot]) == ["arm"] and keep(tags=["rigid", "soft"]) == ["red_cube", "soft_cube"]
    assert keep(tags=["rigid", "soft"], mode=1) == [] and keep(tags=["soft"], categories=[thing]) == ["soft_cube"]
    assert keep(bounds=(Bounds.TYPE_BOX, [(0.45, 0.25, 0.05), (0.7, 0.5, 0.5)])) == ["red_cube"]
    assert keep(bounds=(Bounds.TYPE_SPHERE, [(0.34, -0.26, 0.2), (0.13, 0, 0)])) == ["soft_cube"]
    bad = keep(filter="(")
    assert isinstance(bad, Outcome) and bad.result == Result.RESULT_OPERATION_FAILED and "not a regular expression" in bad.message
    hull = keep(bounds=(Bounds.TYPE_CONVEX_HULL, [(0, 0, 0), (1, 0, 0), (0, 1, 0)]))
    assert hull.result == Result.RESULT_FEATURE_UNSUPPORTED
