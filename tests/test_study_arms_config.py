"""The study's two arms of fakes (`fakes.arms`): config checks, setups, training setups and
the stage list."""

from __future__ import annotations

import dataclasses

import pytest

from ganforensics.errors import ConfigError
from ganforensics.gan.simulator import SimulatorConfig
from ganforensics.study.config import PRESETS, load_config
from ganforensics.study.context import detector_id
from ganforensics.study.pipeline import build_stages
from ganforensics.study.setups import (
    SIMULATOR_FIELDS,
    simulator_overrides,
    study_setups,
    train_setups,
    uses_shipped,
)

BOTH = {"fakes": {"arms": ["sampled", "simulated"]}}


def _names(cfg):
    return [st.name for st in build_stages(cfg)]


def test_sampled_preset_is_the_sampled_arm_alone_with_no_simulator_stage() -> None:
    cfg = load_config(preset="sampled")
    assert cfg["fakes"]["arms"] == ["sampled"]
    assert [s["name"] for s in study_setups(cfg)] == ["BASELINE", "N.1.5", "B.1.5", "Z.1.5",
                                                      "N.3.5"]
    assert train_setups(cfg) == ["BASELINE"]
    names = _names(cfg)
    assert not [n for n in names if "sim" in n]
    # the first training setup keeps the detectors' old folder / stage names
    assert {"detector-cnn", "detector-spectral-decay", "detector-spectral-profile"} <= set(names)
    assert detector_id("cnn", "BASELINE", cfg) == "cnn"


def test_default_runs_both_arms_with_shipped_simulators() -> None:
    cfg = load_config()
    assert cfg["fakes"]["arms"] == ["sampled", "simulated"]
    assert cfg["simulator"]["source"] == "shipped" and uses_shipped(cfg)
    assert train_setups(cfg) == ["BASELINE", "sim-BASELINE"]
    # a training setting means training: a shipped simulator has its own settings
    assert not uses_shipped(load_config({"simulator": {"steps": 50}}))
    assert not uses_shipped(load_config({"simulator": {"source": "train"}}))


def test_both_arms_pair_every_setup_with_its_simulated_counterpart() -> None:
    cfg = load_config({**BOTH, "gan": {"setups": ["BASELINE", "N.1.5"]}})
    setups = study_setups(cfg)
    assert [(s["name"], s["arm"], s["last_block"]) for s in setups] == [
        ("BASELINE", "sampled", "BASELINE"), ("sim-BASELINE", "simulated", "BASELINE"),
        ("N.1.5", "sampled", "N.1.5"), ("sim-N.1.5", "simulated", "N.1.5")]
    assert train_setups(cfg) == ["BASELINE", "sim-BASELINE"]  # the documented rule
    names = _names(cfg)
    for s in ("BASELINE", "N.1.5"):
        assert f"simulator-{s}" in names and f"fakes-sim-{s}" in names
        assert names.index(f"simulator-{s}") < names.index(f"fakes-sim-{s}")
    for kind in ("cnn", "spectral-decay", "spectral-profile"):
        assert f"detector-{kind}" in names and f"detector-{kind}@sim-BASELINE" in names
    stages = {st.name: st for st in build_stages(cfg)}
    assert stages["detector-cnn@sim-BASELINE"].needs == ("fakes-sim-BASELINE",)
    assert set(stages["detection"].needs) >= {"fakes-sim-N.1.5", "detector-cnn@sim-BASELINE"}


def test_simulated_alone_runs_no_gan_and_trains_on_the_simulated_setup() -> None:
    cfg = load_config({"fakes": {"arms": ["simulated"]}})
    assert train_setups(cfg) == ["sim-BASELINE"]
    names = _names(cfg)
    assert not [n for n in names if n.startswith("gan-")]
    assert "fakes-BASELINE" not in names and "fakes-sim-BASELINE" in names
    assert detector_id("cnn", "sim-BASELINE", cfg) == "cnn"


def test_train_setup_lists_are_taken_as_given() -> None:
    cfg = load_config({**BOTH, "detectors": {"train_setup": ["sim-N.1.5", "BASELINE"]}})
    assert train_setups(cfg) == ["sim-N.1.5", "BASELINE"]
    assert detector_id("cnn", "BASELINE", cfg) == "cnn@BASELINE"
    assert train_setups(load_config({**BOTH, "detectors": {"train_setup": "sim-N.1.5"}})) == \
        ["sim-N.1.5"]


@pytest.mark.parametrize(
    ("over", "text"),
    [
        ({"fakes": {"arms": ["sampled", "gan"]}}, "config key 'fakes.arms[1]': unknown value"),
        ({"fakes": {"arms": []}}, "config key 'fakes.arms' must list at least one"),
        ({"fakes": {"arms": ["simulated", "simulated"]}}, "'fakes.arms' must not repeat"),
        ({"fakes": {"arms": "simulated"}}, "config key 'fakes.arms' must be list"),
        ({"simulator": {"steps": 0}}, "config key 'simulator.steps' must be positive"),
        ({"simulator": {"lr": "fast"}}, "config key 'simulator.lr' must be number or null"),
        ({"simulator": {"stpes": 3}}, "unknown config key 'simulator.stpes'"),
        ({"simulator": {"source": "zoo"}}, "config key 'simulator.source': unknown value"),
        ({"fakes": {"arms": ["sampled"]}, "detectors": {"train_setup": "sim-BASELINE"}},
         "config key 'detectors.train_setup': 'sim-BASELINE' is not one of"),
        ({**BOTH, "detectors": {"train_setup": ["BASELINE", "sim-X"]}}, "'sim-X' is not one of"),
        ({**BOTH, "detectors": {"train_setup": []}}, "'detectors.train_setup' must name"),
        ({**BOTH, "detectors": {"train_setup": ["BASELINE", "BASELINE"]}}, "must not repeat"),
        ({**BOTH, "gan": {"setups": ["BASELINE", {"name": "sim-BASELINE",
                                                  "last_block": "N.1.5"}]}},
         "unique across both arms (repeated: sim-BASELINE)"),
    ],
)
def test_arms_errors_name_the_key(over, text) -> None:
    with pytest.raises(ConfigError, match=None) as exc:
        load_config(over)
    assert text in str(exc.value)


def test_simulator_defaults_live_in_the_library() -> None:
    cfg = load_config()
    assert {k: v for k, v in cfg["simulator"].items() if k != "source"} == dict.fromkeys(
        SIMULATOR_FIELDS)
    assert simulator_overrides(cfg) == {}
    over = simulator_overrides(load_config({"simulator": {"steps": 7, "lr": 1}}))
    assert over == {"steps": 7, "lr": 1.0}
    fields = {f.name for f in dataclasses.fields(SimulatorConfig)}
    assert set(simulator_overrides(load_config({"simulator": {
        "steps": 1, "batch_size": 2, "lr": 0.1, "width": 3, "bottleneck": 4}}))) <= fields


def test_sampled_preset_combines_with_quick() -> None:
    assert "sampled" in PRESETS and "arms" not in PRESETS
    cfg = load_config(preset=["quick", "sampled"])
    assert cfg["fakes"]["arms"] == ["sampled"]
    assert cfg["gan"]["steps"] == load_config(preset="quick")["gan"]["steps"]
    assert load_config(preset="quick")["fakes"]["arms"] == ["sampled", "simulated"]
