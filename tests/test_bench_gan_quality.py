"""bench/gan_quality.py's options: the recipe they ask for, and the command a shipped generator
records (the zoo's provenance)."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from ganforensics.errors import ConfigError
from ganforensics.gan.config import preset


@pytest.fixture(scope="module")
def bench(load_bench) -> ModuleType:  # type: ignore[no-untyped-def]
    return load_bench("gan_quality")


def test_recipe_options_default_to_the_preset(bench) -> None:
    args = bench.build_parser().parse_args(["--preset", "sngan", "--work", "w"])
    cfg = bench.config_of(args, 1000)
    ref = preset("sngan")
    assert (cfg.n_d, cfg.lr_d, cfg.lr_g, cfg.loss) == (ref.n_d, ref.lr_d, ref.lr_g, ref.loss)
    assert cfg.steps == 1000 and cfg.checkpoint_every == 500


def test_n_d_and_lr_d_reach_the_config(bench) -> None:
    argv = ["--preset", "sngan", "--last-block", "N.3.5", "--d-depth", "2", "--n-d", "2",
            "--lr-d", "4e-4", "--ema", "0.999", "--work", "w"]
    cfg = bench.config_of(bench.build_parser().parse_args(argv), 20000)
    assert (cfg.n_d, cfg.lr_d, cfg.d_depth, cfg.last_block) == (2, 4e-4, 2, "N.3.5")
    assert cfg.lr_g == preset("sngan").lr_g  # only D's rate moves


def test_betas_reach_the_config_and_default_to_the_preset(bench) -> None:
    argv = ["--preset", "sngan", "--betas", "0", "0.9", "--work", "w"]
    cfg = bench.config_of(bench.build_parser().parse_args(argv), 1000)
    assert tuple(cfg.betas) == (0.0, 0.9) != tuple(preset("sngan").betas)


def test_a_bad_recipe_value_is_a_config_error(bench) -> None:
    args = bench.build_parser().parse_args(["--preset", "sngan", "--n-d", "0", "--work", "w"])
    with pytest.raises(ConfigError, match="n_d"):
        bench.config_of(args, 1000)


def test_the_recorded_command_is_one_run_with_the_recipe_options(bench) -> None:
    argv = ["--preset", "sngan", "--n-d", "2", "--milestones", "5000", "10000",
            "--total-steps", "20000", "--extend", "--threads", "1", "--work", "W"]
    cmd = bench._one_run_command(argv, 20000)
    assert cmd == ("python bench/gan_quality.py --preset sngan --n-d 2 --threads 1 --work W "
                   "--milestones 20000")


@pytest.mark.slow
def test_no_fid_trains_to_the_milestones_and_measures_nothing(bench, tmp_path) -> None:
    """The mode for a machine without the standard Inception network: rows with the step and
    seconds only, a floor of None, and a run that stopped resumable at each milestone."""
    work = tmp_path / "W"
    argv = ["--preset", "ttur", "--batch", "8", "--dim", "8", "--milestones", "2", "3",
            "--total-steps", "6", "--no-fid", "--work", str(work)]
    bench.main(argv)
    rows = [json.loads(line) for line in (work / "quality.jsonl").read_text().splitlines()]
    assert rows[0]["floor"] is None and rows[0]["command"].endswith("--work " + str(work))
    assert [r["step"] for r in rows[1:]] == [2, 3]
    assert not any(k.startswith("fid") for r in rows[1:] for k in r)
    assert rows[2]["train_cpu_s"] >= rows[1]["train_cpu_s"] > 0
    assert bench._reached_step(work / "run") == 3
    assert not (work / "run" / "generator.safetensors").exists()  # 6 steps asked, 3 done


def test_no_fid_cannot_ship(bench, tmp_path) -> None:
    with pytest.raises(ConfigError, match="--no-fid"):
        bench.main(["--no-fid", "--ship", str(tmp_path / "zoo"), "--work", str(tmp_path)])


@pytest.mark.slow
def test_a_rerun_of_a_finished_run_logs_and_trains_nothing(bench, tmp_path, capsys) -> None:
    """Restarting a chain of runs re-invokes the finished ones: they print their logged row and
    leave the log (and so a shipped generator's provenance) as it was."""
    work = tmp_path / "W"
    argv = ["--preset", "ttur", "--batch", "8", "--dim", "8", "--milestones", "2",
            "--no-fid", "--work", str(work)]
    bench.main(argv)
    logged = (work / "quality.jsonl").read_text()
    state = (work / "run" / "checkpoints" / "step-0000002" / "state.json").read_text()
    capsys.readouterr()
    bench.main(argv)
    assert (work / "quality.jsonl").read_text() == logged
    assert (work / "run" / "checkpoints" / "step-0000002" / "state.json").read_text() == state
    assert json.loads(capsys.readouterr().out) == json.loads(logged.splitlines()[-1])
