"""The study's setups across the two arms of fakes (`fakes.arms`): `sampled` (a GAN per setup S,
its samples) and `simulated` (setup `sim-S`: the real patches reconstructed by an up-sampling
simulator ending in S's last block); the detectors' training setups; the simulator settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganforensics.errors import ConfigError

ARMS = ("sampled", "simulated")
"""Values of `fakes.arms`: GAN samples per setup S, and reconstructions of the real patches by
S's up-sampling simulator (study setup `sim-S`)."""
SIM_PREFIX = "sim-"
SIMULATOR_SOURCES = ("shipped", "train")
"""Values of `simulator.source` and `gan.source`: the package's shipped simulators (generators)
where they fit, or trained."""
# `simulator.<key>` -> the `gan.simulator.SimulatorConfig` field it sets (null = its default)
SIMULATOR_FIELDS = {"steps": "steps", "batch_size": "batch", "lr": "lr", "width": "width",
                    "bottleneck": "bottleneck"}

def sim_name(setup: str) -> str:
    """The study name of the simulated counterpart of setup `setup` (`sim-BASELINE`)."""
    return f"{SIM_PREFIX}{setup}"


def study_setups(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every setup whose fakes the study measures, S and sim-S adjacent (in `gan.setups` order):
    mappings with `name`, `last_block`, `arm` (`sampled` / `simulated`), `base` (the GAN setup's
    name) and, for sampled ones, the GAN `preset` (and `steps` when set)."""
    arms = cfg["fakes"]["arms"]
    out: list[dict[str, Any]] = []
    for s in cfg["gan"]["setups"]:
        if "sampled" in arms:
            out.append({**s, "arm": "sampled", "base": s["name"]})
        if "simulated" in arms:
            out.append({"name": sim_name(s["name"]), "last_block": s["last_block"],
                        "arm": "simulated", "base": s["name"]})
    return out


def train_setups(cfg: Mapping[str, Any]) -> list[str]:
    """The setups the detectors train on (the first one also feeds bypass, robustness,
    grayscale and explain). A list is taken as given; a single name S means [S] with one arm,
    [S, sim-S] with both, and sim-S alone with only `simulated` (a name already starting with
    `sim-` stays as it is)."""
    value = cfg["detectors"]["train_setup"]
    if isinstance(value, list):
        return [str(v) for v in value]
    name = str(value)
    if name.startswith(SIM_PREFIX):
        return [name]
    arms = cfg["fakes"]["arms"]
    return ([name] if "sampled" in arms else []) + (
        [sim_name(name)] if "simulated" in arms else [])


def simulator_overrides(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """`SimulatorConfig` keyword arguments of the `simulator:` keys that are not null."""
    return {field: cfg["simulator"][key] for key, field in SIMULATOR_FIELDS.items()
            if cfg["simulator"][key] is not None}


def uses_shipped(cfg: Mapping[str, Any]) -> bool:
    """True when the study may use shipped simulators: `simulator.source: shipped` and none of
    the training keys set (a shipped simulator has its own settings)."""
    return cfg["simulator"]["source"] == "shipped" and not simulator_overrides(cfg)


def may_ship_gan(cfg: Mapping[str, Any], setup: Mapping[str, Any]) -> bool:
    """True when a shipped generator may stand in for `setup`'s GAN: `gan.source: shipped` and
    the setup asks for no training of its own (no steps, objectives or preset other than
    `gan.preset`). A shipped generator has its own recipe, which the report names; `gan.preset`,
    `gan.steps` and the other training keys describe the GANs the study trains."""
    return (cfg["gan"]["source"] == "shipped" and "steps" not in setup
            and not setup.get("objectives") and setup["preset"] == cfg["gan"]["preset"])


def check_arms(cfg: Mapping[str, Any]) -> None:
    arms = cfg["fakes"]["arms"]
    if not arms:
        raise ConfigError("config key 'fakes.arms' must list at least one of "
                          f"{', '.join(ARMS)}")
    for i, arm in enumerate(arms):
        if arm not in ARMS:
            raise ConfigError(f"config key 'fakes.arms[{i}]': unknown value {arm!r} "
                              f"(known: {', '.join(ARMS)})")
    if len(set(arms)) != len(arms):
        raise ConfigError(f"config key 'fakes.arms' must not repeat an arm, got {arms!r}")
    for key in SIMULATOR_FIELDS:
        value = cfg["simulator"][key]
        if value is not None and not value > 0:
            raise ConfigError(f"config key 'simulator.{key}' must be positive or null, "
                              f"got {value!r}")


def check_train_setups(cfg: Mapping[str, Any]) -> None:
    names = [s["name"] for s in study_setups(cfg)]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"gan.setups: setup names must be unique across both arms "
                          f"(repeated: {', '.join(dup)})")
    value = cfg["detectors"]["train_setup"]
    if isinstance(value, list):
        if not value:
            raise ConfigError("config key 'detectors.train_setup' must name at least one setup")
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise ConfigError(f"config key 'detectors.train_setup[{i}]' must be a setup "
                                  f"name, got {v!r}")
        if len(set(value)) != len(value):
            raise ConfigError(f"config key 'detectors.train_setup' must not repeat a setup, "
                              f"got {value!r}")
    for name in train_setups(cfg):
        if name not in names:
            raise ConfigError(
                f"config key 'detectors.train_setup': {name!r} is not one of the study's "
                f"setups ({', '.join(names)}; fakes.arms = {cfg['fakes']['arms']})"
            )
