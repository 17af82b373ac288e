"""Study config: defaults, presets, deep-merged overrides, unknown keys and type errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.errors import ConfigError
from ganforensics.study.config import PRESETS, defaults, load_config, merge
from ganforensics.study.measure_stages import quality_size


def test_defaults_resolve_with_the_five_setups() -> None:
    cfg = load_config()
    names = [s["name"] for s in cfg["gan"]["setups"]]
    assert names == ["BASELINE", "N.1.5", "B.1.5", "Z.1.5", "N.3.5"]
    assert all(s["preset"] == "ttur" for s in cfg["gan"]["setups"])  # DCGAN nets, TTUR lrs
    assert cfg["detectors"]["train_setup"] == "BASELINE"


def test_quick_preset_is_smaller_than_default() -> None:
    d, q = load_config(), load_config(preset="quick")
    assert q["gan"]["steps"] < d["gan"]["steps"]
    assert q["fakes"]["n_test"] < d["fakes"]["n_test"]
    # keys the preset does not touch keep their default
    assert q["gan"]["setups"] == d["gan"]["setups"]
    assert q["seed"] == d["seed"]


def test_overrides_deep_merge_keeps_siblings() -> None:
    cfg = load_config({"detectors": {"cnn": {"epochs": 1}}, "gan": {"steps": 5}})
    assert cfg["detectors"]["cnn"]["epochs"] == 1
    assert cfg["detectors"]["cnn"]["arch"] == defaults()["detectors"]["cnn"]["arch"]
    assert cfg["detectors"]["spectral_decay"]["enabled"] is True
    assert cfg["gan"]["steps"] == 5
    assert cfg["gan"]["batch_size"] == defaults()["gan"]["batch_size"]


def test_overrides_from_a_file(tmp_path) -> None:
    p = tmp_path / "my.yaml"
    p.write_text("gan:\n  setups: [BASELINE, {name: LS, last_block: N.1.5, preset: lsgan}]\n")
    cfg = load_config(p)
    assert cfg["gan"]["setups"][1] == {"name": "LS", "last_block": "N.1.5", "preset": "lsgan"}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == load_config()


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"gan": {"stpes": 3}}, "gan.stpes"),
        ({"detectors": {"cnn": {"epoch": 3}}}, "detectors.cnn.epoch"),
        ({"nope": 1}, "'nope'"),
        ({"gan": {"setups": [{"name": "A", "lastblock": "B"}]}}, "gan.setups[0].lastblock"),
    ],
)
def test_unknown_keys_name_the_key_path(over, needle) -> None:
    with pytest.raises(ConfigError, match="unknown config key") as exc:
        load_config(over)
    assert needle in str(exc.value)


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"gan": {"steps": "many"}}, "gan.steps"),
        ({"gan": {"steps": 1.5}}, "gan.steps"),
        ({"detectors": {"cnn": {"enabled": "yes"}}}, "detectors.cnn.enabled"),
        ({"gan": 3}, "gan"),
        ({"spectra": {"top_fraction": 2}}, "spectra.top_fraction"),
        ({"gan": {"preset": "bigan"}}, "gan.preset"),
        ({"fakes": {"n_test": 0}}, "fakes.n_test"),
        ({"detectors": {"train_setup": "X.9.9"}}, "detectors.train_setup"),
        ({"gan": {"setups": ["A/B"]}}, "gan.setups[0]"),
        ({"gan": {"setups": ["N.1.5", "N.1.5"]}}, "unique"),
        ({"data": {"sources": "photos"}}, "data.sources"),
    ],
)
def test_bad_values_are_config_errors(over, needle) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(over)
    assert needle in str(exc.value)


@pytest.mark.parametrize(
    ("over", "path", "value", "known"),
    [
        ({"detectors": {"cnn": {"arch": "nope"}}}, "detectors.cnn.arch", "nope", "resnet50"),
        ({"detectors": {"cnn": {"recipe": "x"}}}, "detectors.cnn.recipe", "x", "khan2019"),
        ({"detectors": {"spectral_profile": {"classifier": "svm"}}},
         "detectors.spectral_profile.classifier", "svm", "rbf-svm"),
        ({"quality": {"extractor": "clip"}}, "quality.extractor", "clip", "inception"),
        ({"evaluate": {"grid": "huge"}}, "evaluate.grid", "huge", "standard"),
        ({"gan": {"preset": "bigan"}}, "gan.preset", "bigan", "ttur-wgan-gp"),
        ({"data": {"size": 48}}, "data.size", 48, "128"),
        ({"gan": {"setups": ["FOO"]}, "detectors": {"train_setup": "FOO"}},
         "gan.setups[0]", "FOO", "N.3.5"),
        ({"gan": {"setups": ["BASELINE", {"name": "X", "last_block": "N.9.5"}]}},
         "gan.setups[1].last_block", "N.9.5", "BASELINE"),
        ({"gan": {"setups": [{"name": "BASELINE", "preset": "bigan"}]}},
         "gan.setups[0].preset", "bigan", "lsgan"),
    ],
)
def test_unknown_enumerated_values_name_the_key_and_the_choices(over, path, value, known) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(over)
    msg = str(exc.value)
    assert f"config key '{path}': unknown value {value!r}" in msg
    assert known in msg.split("(known: ", 1)[1]


def test_choices_come_from_the_library_registries() -> None:
    from ganforensics.detectors.cnn.archs import ARCHS
    from ganforensics.gan.nets import LAST_BLOCKS

    with pytest.raises(ConfigError) as exc:
        load_config({"detectors": {"cnn": {"arch": "nope"}}})
    assert f"(known: {', '.join(ARCHS)})" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_config({"gan": {"setups": ["FOO"]}, "detectors": {"train_setup": "FOO"}})
    assert f"(known: {', '.join(LAST_BLOCKS)})" in str(exc.value)
    # every registered architecture and last block is accepted
    for arch in ARCHS:
        assert load_config({"detectors": {"cnn": {"arch": arch}}})["detectors"]["cnn"]["arch"] \
            == arch
    cfg = load_config({"gan": {"setups": list(LAST_BLOCKS)}})
    assert [s["last_block"] for s in cfg["gan"]["setups"]] == list(LAST_BLOCKS)


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"gan": {"steps": 0}}, "config key 'gan.steps' must be at least 1, got 0"),
        ({"detectors": {"cnn": {"epochs": -3}}}, "'detectors.cnn.epochs' must be at least 1"),
        ({"detectors": {"cnn": {"batch_size": 0}}}, "'detectors.cnn.batch_size'"),
        ({"quality": {"kid_subset_size": 1}}, "'quality.kid_subset_size' must be at least 2"),
        ({"data": {"max_patches": 0}}, "'data.max_patches'"),
        ({"detectors": {"cnn": {"aug_prob": 1.5}}}, "'detectors.cnn.aug_prob'"),
        ({"detectors": {"cnn": {"lr": 0}}}, "'detectors.cnn.lr' must be a number > 0"),
        ({"detectors": {"cnn": {"lr": "fast"}}}, "'detectors.cnn.lr'"),
        ({"spectra": {"top_fraction": 0}}, "'spectra.top_fraction'"),
        ({"gan": {"setups": [{"name": "BASELINE", "steps": 0}]}}, "'gan.setups[0].steps'"),
        ({"bypass": {"n_train": 2000}}, "'bypass.n_train'"),
    ],
)
def test_bad_numbers_name_the_key(over, needle) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(over)
    assert needle in str(exc.value)


def test_numbers_at_the_edge_of_their_range_are_accepted() -> None:
    cfg = load_config({"gan": {"steps": 1, "setups": [{"name": "BASELINE", "steps": 1}]},
                       "quality": {"kid_subset_size": 2}, "detectors": {"cnn": {"aug_prob": 0}},
                       "bypass": {"n_train": 1000}})
    assert cfg["gan"]["setups"][0]["steps"] == 1
    assert load_config({"detectors": {"cnn": {"lr": None}}})["detectors"]["cnn"]["lr"] is None
    # a bypass larger than the train fakes is fine when the bypass stage is off
    assert load_config({"bypass": {"enabled": False, "n_train": 5000}})["bypass"]["n_train"] == 5000


def test_cli_study_bad_value_exits_2_before_any_stage(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("detectors:\n  cnn:\n    arch: nope\n")
    res = CliRunner().invoke(app, ["study", str(p), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2
    assert "detectors.cnn.arch" in res.output and "resnet18" in res.output
    assert not (tmp_path / "run").exists()


def test_int_accepted_for_float_and_null_for_nullable() -> None:
    cfg = load_config({"spectra": {"top_fraction": 1}, "data": {"max_patches": None}})
    assert cfg["spectra"]["top_fraction"] == 1.0
    assert isinstance(cfg["spectra"]["top_fraction"], float)


def test_merge_does_not_mutate_the_base() -> None:
    base = {"a": {"b": 1, "c": [1]}}
    merge(base, {"a": {"b": 2}})
    assert base == {"a": {"b": 1, "c": [1]}}


def test_bad_yaml_file_names_the_file(tmp_path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("gan: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_a_key_given_twice_is_refused_with_its_line(tmp_path) -> None:
    p = tmp_path / "twice.yaml"
    p.write_text("gan:\n  steps: 10\nquality:\n  n: 20\ngan:\n  batch_size: 8\n")
    with pytest.raises(ConfigError, match=r"twice.yaml.*duplicate key 'gan' \(line 5\)"):
        load_config(p)
    p.write_text("gan:\n  steps: 10\n  steps: 20\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'steps' \(line 3\)"):
        load_config(p)
    p.write_text("gan:\n  steps: 10\nquality:\n  n: 20\n")  # same keys in other mappings
    assert load_config(p)["gan"]["steps"] == 10


def test_every_packaged_preset_loads_with_no_key_given_twice() -> None:
    for name in PRESETS:  # the package files go through the same strict reader
        assert load_config(preset=name)["seed"] >= 0


def test_cli_study_unknown_key_exits_2(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("gan:\n  stpes: 10\n")
    res = CliRunner().invoke(app, ["study", str(p), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2
    assert "gan.stpes" in res.output
    assert not (tmp_path / "run").exists()


def test_cli_study_defaults_prints_resolvable_yaml() -> None:
    res = CliRunner().invoke(app, ["study-defaults", "--quick"])
    assert res.exit_code == 0
    printed = yaml.safe_load(res.stdout)
    assert printed == load_config(preset="quick")
    # the printed (resolved) config is itself a valid override file
    assert load_config(printed) == load_config(preset="quick")


@pytest.mark.parametrize(("arms", "n_train", "expected", "says"), [
    (["sampled"], 2000, 400, "capped at fakes.n_test"),
    (["simulated"], 2000, 450, None),  # no sampled fakes: n_test does not cap
    (["sampled"], 500, 250, "capped at half the 500 train reals"),
])
def test_quality_n_is_capped_and_says_so(arms, n_train, expected, says, capsys) -> None:
    cfg = {"quality": {"n": 450}, "fakes": {"n_test": 400}}
    ctx = SimpleNamespace(cfg=cfg, setups=lambda: [{"arm": a} for a in arms])
    assert quality_size(ctx, n_train) == expected
    err = capsys.readouterr().err
    assert (says in err) if says else err == ""
