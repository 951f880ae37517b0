"""The tuner: seeded and repeatable, reports edges, prunes epoch-trained models, records into the settings file."""

import json

import pandas as pd
import pytest

pytest.importorskip("optuna")

from recsys_lab.course.tuning_spaces import TASKS, record  # noqa: E402
from recsys_lab.data import Interactions, leave_last_out  # noqa: E402
from recsys_lab.evaluation.tuning import Choice, FloatParam, IntParam, edge_params, tune  # noqa: E402
from recsys_lab.models.ease import EASE  # noqa: E402


@pytest.fixture(scope="module")
def small_split(movielens):
    ratings = movielens.ratings[movielens.ratings["user_id"] <= 40]
    return leave_last_out(Interactions.from_frame(ratings))


def test_the_same_seed_proposes_the_same_trials_and_finds_the_best(small_split):
    space = {"regularization": FloatParam(1.0, 1e4, log=True)}
    first = tune(lambda **p: EASE(**p), space, small_split, n_trials=6, random_state=0)
    again = tune(lambda **p: EASE(**p), space, small_split, n_trials=6, random_state=0)
    tried = [t.params["regularization"] for t in first.study.trials]
    assert tried == [t.params["regularization"] for t in again.study.trials]
    assert first.n_trials == 6 and 0 < first.best_value <= 1
    assert first.best_value == max(t.value for t in first.study.trials)


def test_a_choice_near_a_bound_is_reported_as_on_the_edge():
    space = {"a": FloatParam(1e-3, 1e3, log=True), "b": IntParam(1, 100), "c": Choice((1, 2))}
    assert edge_params({"a": 2e-3, "b": 50, "c": 1}, space) == ["a"]
    assert edge_params({"a": 1.0, "b": 99, "c": 2}, space) == ["b"]
    assert edge_params({"a": 1.0, "b": 50, "c": 2}, space) == []


def test_models_trained_in_epochs_are_pruned(small_split):
    from recsys_lab.models.lightgcn import LightGCN, LightGCNConfig

    space = {"lr": FloatParam(1e-5, 1e-1, log=True)}
    result = tune(lambda **p: LightGCN(LightGCNConfig(factors=4, n_layers=1, epochs=5, **p), random_state=0),
                  space, small_split, n_trials=8, random_state=0)
    states = pd.Series([t.state.name for t in result.study.trials])
    assert (states == "PRUNED").any() and (states == "COMPLETE").any()


def test_bad_search_spaces_are_refused(small_split):
    with pytest.raises(ValueError, match="space is empty"):
        tune(lambda **p: EASE(**p), {}, small_split)
    with pytest.raises(TypeError, match="FloatParam, IntParam or Choice"):
        tune(lambda **p: EASE(**p), {"regularization": (1, 10)}, small_split)
    with pytest.raises(TypeError, match="leave_last_out"):
        tune(lambda **p: EASE(**p), {"regularization": FloatParam(1, 10)}, small_split.train)


def test_record_writes_the_choice_and_its_search_into_the_settings_file(small_split, tmp_path):
    path = tmp_path / "chosen_settings.json"
    path.write_text(json.dumps({"ease": {"chapter": "12", "params": {"regularization": 150.0}}}))
    result = tune(TASKS["ease"].build, TASKS["ease"].space, small_split, n_trials=3, random_state=0)
    entry = record("ease", result, path=path)
    stored = json.loads(path.read_text())["ease"]
    assert stored == entry and stored["chapter"] == "12" and stored["n_trials"] == 3
    assert stored["params"] == result.best_params and stored["search_space"]["regularization"]["log"] is True


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_search_space_builds_its_model(name):
    task = TASKS[name]
    lowest = {key: param.values[0] if isinstance(param, Choice) else param.low for key, param in task.space.items()}
    highest = {key: param.values[-1] if isinstance(param, Choice) else param.high for key, param in task.space.items()}
    for params in (lowest, highest):                 # every name is a setting of the model, every bound a valid value
        assert task.build(**task.fixed, **params) is not None
