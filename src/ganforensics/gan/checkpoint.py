"""Atomic, pickle-free training checkpoints: safetensors for tensors, JSON for the rest.

A checkpoint is a folder `checkpoints/step-NNNNNNN/` written under a temporary name and renamed
into place when complete; `checkpoints/latest.json` (written atomically afterwards) names it.
A process killed mid-write leaves only a `.tmp-*` folder, which is ignored and cleaned up.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganforensics.errors import InputError
from ganforensics.io.atomic import write_json_atomic

KEEP = 2


def _flatten_optim(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for idx, st in sd["state"].items():
        entry: dict[str, Any] = {}
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
                entry[k] = {"tensor": f"{idx}.{k}"}
            else:
                entry[k] = v
        meta["state"][str(idx)] = entry
    return tensors, meta


def _unflatten_optim(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for idx, entry in meta["state"].items():
        state[int(idx)] = {
            k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
            for k, v in entry.items()
        }
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def _match_param_layout(opt: torch.optim.Optimizer) -> None:
    """Give each per-parameter state tensor its parameter's strides (a checkpoint stores them
    contiguous; a channels-last network's fresh Adam state is channels-last), so a resumed run
    takes the same kernels, and rounds the same, as one never stopped."""
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                    st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def _state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_checkpoint(
    ckpt_root: Path,
    step: int,
    modules: dict[str, torch.nn.Module],
    optims: dict[str, torch.optim.Optimizer],
    state: dict[str, Any],
) -> Path:
    """Write `ckpt_root/step-NNNNNNN/` atomically; update `latest.json`; keep the last 2."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:07d}"
    tmp = ckpt_root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for key, mod in modules.items():
        save_file(_state_dict(mod), str(tmp / f"{key}.safetensors"))
    optim_meta = {}
    for key, opt in optims.items():
        tensors, meta = _flatten_optim(opt.state_dict())
        save_file(tensors, str(tmp / f"{key}.safetensors"))
        optim_meta[key] = meta
    save_file({"torch_cpu": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    (tmp / "optim.json").write_text(json.dumps(optim_meta))
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}))
    final = ckpt_root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_json_atomic(ckpt_root / "latest.json", {"step": step, "dir": name})
    _prune(ckpt_root)
    return final


def _prune(ckpt_root: Path) -> None:
    for stale in ckpt_root.glob(".tmp-*"):
        if not stale.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(stale, ignore_errors=True)
    done = sorted(p for p in ckpt_root.glob("step-*") if (p / "state.json").exists())
    for old in done[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    latest = ckpt_root / "latest.json"
    if latest.exists():
        try:
            p = ckpt_root / json.loads(latest.read_text())["dir"]
            if (p / "state.json").exists():
                return p
        except (OSError, ValueError, KeyError):
            pass
    done = sorted(p for p in ckpt_root.glob("step-*") if (p / "state.json").exists())
    return done[-1] if done else None


def load_checkpoint(
    path: Path,
    modules: dict[str, torch.nn.Module],
    optims: dict[str, torch.optim.Optimizer],
) -> dict[str, Any]:
    """Restore modules, optimisers and the global torch RNG; return the saved state dict."""
    try:
        for key, mod in modules.items():
            mod.load_state_dict(load_file(str(path / f"{key}.safetensors")))
        optim_meta = json.loads((path / "optim.json").read_text())
        for key, opt in optims.items():
            tensors = load_file(str(path / f"{key}.safetensors"))
            opt.load_state_dict(_unflatten_optim(tensors, optim_meta[key]))
            _match_param_layout(opt)
        torch.set_rng_state(load_file(str(path / "rng.safetensors"))["torch_cpu"])
        return json.loads((path / "state.json").read_text())
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise InputError(f"{path}: unusable checkpoint ({str(exc).splitlines()[0]})") from None
