"""The simulation_interfaces rules of ros_nodes/simulation.py as pure functions (the built
message package, no running graph); the services themselves are tested across processes in
test_ros_nodes.py."""
from simulation_interfaces.msg import Result
from simulation_interfaces.srv import ResetSimulation, SetSimulationState

from ros_nodes.simulation import MAX_STEPS, PAUSED, PLAYING, STOPPED, reset_refusal, step_refusal, transition


def test_state_transitions_follow_the_standard():
    assert transition(PLAYING, PAUSED).result == Result.RESULT_OK
    assert transition(PAUSED, PLAYING).result == Result.RESULT_OK
    assert transition(PLAYING, STOPPED).result == Result.RESULT_OK
    assert transition(STOPPED, PLAYING).result == Result.RESULT_OK
    assert transition(PAUSED, PAUSED).result == SetSimulationState.Response.ALREADY_IN_TARGET_STATE
    stopped_to_paused = transition(STOPPED, PAUSED)
    assert stopped_to_paused.result == SetSimulationState.Response.INCORRECT_TRANSITION and "PLAYING" in stopped_to_paused.message
    assert transition(PLAYING, 3).result == Result.RESULT_FEATURE_UNSUPPORTED  # QUITTING: stop the node instead


def test_steps_need_a_paused_simulation_and_a_bounded_count():
    assert step_refusal(PAUSED, 5) is None
    assert "needs PAUSED" in step_refusal(PLAYING, 1).message
    assert "PLAYING, then PAUSED" in step_refusal(STOPPED, 1).message
    assert step_refusal(PAUSED, 0).result == step_refusal(PAUSED, MAX_STEPS + 1).result == Result.RESULT_OPERATION_FAILED


def test_resets_of_time_and_state_run_and_despawning_is_unsupported():
    scope = ResetSimulation.Request
    for ok in (scope.SCOPE_DEFAULT, scope.SCOPE_ALL, scope.SCOPE_TIME, scope.SCOPE_STATE, scope.SCOPE_TIME | scope.SCOPE_STATE):
        assert reset_refusal(ok) is None
    assert reset_refusal(scope.SCOPE_SPAWNED).result == Result.RESULT_FEATURE_UNSUPPORTED
