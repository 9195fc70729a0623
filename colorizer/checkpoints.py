"""Training checkpoints: the resume file (OUT.resume: the weights in full precision, the optimizer,
the scheduler, the loop's state, the crop plan's signature and the random states), the per-epoch
files (OUT-stem.epochN.pt), starting weights (another checkpoint, Zhang et al.'s official ones)
and the weights digest that tells two runs' results apart. The shipped checkpoint format itself is
colorizer/weights.py.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from .train_config import TrainConfig
from .weights import load_state_dict_strict, read_checkpoint

def plan_signature(cfg: TrainConfig, world: int, cache_key) -> dict:
    """What a step of the crop plan depends on: a run resumed mid-epoch must keep it."""
    return {"seed": cfg.seed, "global_batch": cfg.batch_size * world, "epoch_size": cfg.epoch_size,
            "data_weights": cfg.data_weights, "photos": cache_key}


def resume_state(ck: dict) -> dict:
    """A resume file's loop state; files written before mid-epoch checkpoints start at step 0."""
    state = dict(ck["state"])
    state.setdefault("step", 0)
    state.setdefault("epoch_seen", 0)
    state.setdefault("run_loss", 0.0)
    return state


def new_state() -> dict:
    """The loop state of a run that starts afresh (the resume file's "state")."""
    return {"epoch": 0, "step": 0, "epoch_seen": 0, "run_loss": 0.0, "best_loss": float("inf"),
            "best_epoch": 0, "bad_epochs": 0, "elapsed_s": 0.0, "images_seen": 0, "history": []}


def resume_path_for(out: Path) -> Path:
    """The resume file of a run that writes OUT: OUT.resume beside it."""
    return out.with_name(out.name + ".resume")


def read_resume(path: Path, arch: str, model_args: dict) -> dict:
    """A resume file, refused when another model wrote it."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if ck.get("arch") != arch or ck.get("model_args") != model_args:
        raise ValueError(
            f"{path} was written by a run with another model ({ck.get('arch')} "
            f"{ck.get('model_args')}); resume with the same options, or delete it to start afresh")
    return ck


def write_resume(path: Path, model, opt, sched, state: dict, model_args: dict, arch: str,
                 adversary=None, scaler=None, plan: dict | None = None) -> None:
    """Write the resume file (through a temporary file, so that a kill never leaves half of one):
    the weights in full precision on the CPU, the optimizer, the scheduler, the loop's state, the
    model's description, the adversary and the gradient scaler if any, the crop plan's signature
    and the global random states."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()},
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "state": state,
                "model_args": model_args, "arch": arch,
                "adversary": adversary.state_dict() if adversary else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "plan": plan,
                "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                        "torch": torch.get_rng_state()}},
               tmp)
    os.replace(tmp, path)


def restore_resume(ck: dict, path: Path, plan: dict, opt, sched, scaler=None, adversary=None) -> dict:
    """Carry on where the resume file stopped: the optimizer, the scheduler, the gradient scaler,
    the adversary and the global random states as they were; returns the loop state. A run that
    stopped mid-epoch must keep the crop plan (same seed, global batch, epoch size, shares and photos)."""
    old_plan = ck.get("plan")
    if old_plan and ck["state"].get("step") and old_plan != plan:
        changed = ", ".join(f"{k} {old_plan.get(k)!r} -> {v!r}" for k, v in plan.items()
                            if old_plan.get(k) != v)
        raise ValueError(f"{path} stopped in the middle of an epoch whose crops depend on "
                         f"what changed here ({changed}): resume with the same --seed, --batch-size "
                         f"(and number of processes), --epoch-size, --data-weights and photos")
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    if scaler is not None and ck.get("scaler"):
        scaler.load_state_dict(ck["scaler"])
    state = resume_state(ck)
    if adversary is not None and ck.get("adversary"):
        adversary.load_state_dict(ck["adversary"])
    if ck.get("rng"):
        random.setstate(ck["rng"]["python"])
        np.random.set_state(ck["rng"]["numpy"])
        torch.set_rng_state(ck["rng"]["torch"])
    return state


def start_from(cfg: TrainConfig, model, log) -> None:
    """The starting weights of a run that does not resume: another checkpoint's (--init), the
    official ones (--init official), ImageNet weights for the encoder, or the initialization."""
    if cfg.init == "official":
        init_official(model, cfg.arch, cfg.official_file)
        log(f"initialized from the official {cfg.arch} weights"
            + (f" in {cfg.official_file}" if cfg.official_file else ""))
    elif cfg.init:
        init_from(model, cfg.init)
        log(f"initialized from {cfg.init}")
    elif cfg.pretrained and cfg.arch in ("backbone_unet", "vae_gan"):
        model.load_pretrained_encoder(cfg.pretrained_file)
        log(f"encoder {cfg.encoder} initialized from ImageNet weights")


def weights_digest(model) -> str:
    """A short hash of a model's parameters (the same on every rank of a run that trains one
    shared model; batch-norm statistics are each rank's own until rank 0's are saved)."""
    import hashlib
    h = hashlib.sha256()
    for k, v in model.named_parameters():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def epoch_checkpoint(out: Path, epoch: int) -> Path:
    """Where a run that keeps each epoch (--keep-epochs, --adv-weight) puts it: NAME.pt ->
    NAME.epoch3.pt beside it."""
    return out.with_name(f"{out.stem}.epoch{epoch}{out.suffix}")


def init_official(model, arch: str, path=None) -> None:
    """Start from Zhang et al.'s released weights: the registry's file (sha256 checked) or, with
    path, a state dict in the official layout (every key and shape checked)."""
    from .registry import resolve
    from .weights import read_official_state_dict
    if path is None:
        entry = resolve(arch)
        sd = read_official_state_dict(arch, entry.path, verify=True)
    else:
        sd = read_official_state_dict(arch, path, verify=False)
    load_state_dict_strict(model, sd, f"official {arch} weights")


def init_from(model, path) -> None:
    """Start from another checkpoint's weights. The two models must match tensor for tensor,
    except the hint layers a hint model adds and the scene context (they start at zero, so the
    model starts out as the one it came from)."""
    ck = read_checkpoint(path)
    own = model.state_dict()
    src = {k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    new_ok = {k for k in own if k.startswith(("hint_stem.", "hint_mix.", "hint_branch.", "context.", "latent."))}
    missing = sorted(set(own) - set(src) - new_ok)
    extra = sorted(set(src) - set(own))
    bad = sorted(k for k in src if k in own and tuple(src[k].shape) != tuple(own[k].shape))
    if missing or extra or bad:
        raise ValueError(f"{path} does not fit this model: missing {missing[:5]}, unexpected {extra[:5]}, "
                         f"wrong shape {bad[:5]}")
    own.update(src)
    model.load_state_dict(own, strict=True)
