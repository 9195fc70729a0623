"""The configuration of a training run (TrainConfig) and its checks, and the model arguments it
implies (model_args_for). Pure Python: no torch, nothing run.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from .data import folder_shares
from .models.heads import HEADS, DEFAULT_TEMPERATURE


def torchrun_world(env=None) -> tuple[int, int]:
    """(processes, this process's local rank) as torchrun sets them in WORLD_SIZE and LOCAL_RANK;
    (1, 0) for a plain run. The one place training reads the launcher's variables."""
    env = os.environ if env is None else env
    return int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0"))

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Zhang et al.'s networks, trainable from their official weights (--init official): each has its
# own output (ECCV16: logits over its 313 bins; SIGGRAPH17: ab / 110, with hint inputs)
OFFICIAL_ARCHS = {"eccv16": "classification", "siggraph17": "regression"}


TRAIN_ONLY = ("all", "hint-branch")


@dataclass
class TrainConfig:
    data: list
    out: str
    data_weights: list | None = None
    val: list = field(default_factory=list)
    arch: str = "backbone_unet"
    encoder: str = "efficientnet_lite0"
    head: str = "classification"
    regression_loss: str = "huber"
    decoder_channels: list = field(default_factory=lambda: [128, 64, 48])
    out_stride: int = 4
    pretrained: bool = True
    pretrained_file: str | None = None
    crop_size: int = 128
    batch_size: int = 32
    epoch_size: int = 4000
    epochs: int = 100
    lr: float = 5e-4
    weight_decay: float = 0.0
    rebalance_lambda: float = 0.5
    bins_file: str | None = None
    temperature: float = DEFAULT_TEMPERATURE
    correction: float = 0.0
    gain: float = 1.0
    patience: int = 6
    lr_patience: int = 2
    max_minutes: float | None = None
    val_images: int = 300
    threads: int | None = None
    workers: int = 1
    seed: int = 0
    resume: bool = False
    log: str | None = None
    input_size: int = 256
    hints: bool = False
    hint_p_none: float = 0.3
    hint_mean_count: float = 8.0
    init: str | None = None
    decode_weight: float = 0.0
    hint_lr_mult: float = 1.0
    hint_branch: int = 0
    train_only: str = "all"
    through_spread: bool = False
    ce_weight: float = 1.0
    decode_loss: str = "mse"
    keep_epochs: bool = False
    adv_weight: float = 0.0
    adv_warmup: int = 100
    disc_lr: float = 1e-4
    disc_channels: int = 64
    scene_context: int = 0
    device: str = "cpu"
    precision: str = "auto"
    channels_last: bool = True
    time_budget: float | None = None
    max_steps: int | None = None
    checkpoint_minutes: float = 5.0
    cache_dir: str | None = None
    pack: str | None = None
    official_file: str | None = None
    latent_dim: int = 8
    kl_weight: float = 1.0

    def check(self) -> None:
        """Options that cannot go together, or values out of range: a ValueError that says which."""
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}: choose one of {', '.join(HEADS)}")
        if self.train_only not in TRAIN_ONLY:
            raise ValueError(f"--train-only must be one of {', '.join(TRAIN_ONLY)}, not {self.train_only!r}")
        if self.hint_branch and not self.hints:
            raise ValueError("--hint-branch needs --hints")
        if self.train_only == "hint-branch" and not self.hint_branch:
            raise ValueError("--train-only hint-branch needs --hint-branch")
        if self.through_spread and not (self.hints and self.head == "classification" and self.decode_weight):
            raise ValueError("--through-spread needs --hints, the classification head and --decode-weight")
        if self.adv_weight and self.train_only != "all":
            raise ValueError("--adv-weight trains the whole network: leave out --train-only")
        if self.adv_weight < 0:
            raise ValueError("--adv-weight must be 0 or more")
        if self.adv_weight and self.crop_size < 12 * self.out_stride:
            raise ValueError(f"--adv-weight needs crops of at least {12 * self.out_stride} px (the patch "
                             f"discriminator sees the {self.out_stride}x smaller output grid), not {self.crop_size}")
        if self.adv_weight and torchrun_world()[0] > 1:
            raise ValueError("--adv-weight is not supported under torchrun: run it in one process")
        if not self.data and not self.pack:
            raise ValueError("--data needs at least one folder of photos (or --pack a training pack)")
        if self.data_weights and self.data:
            folder_shares(self.data, self.data_weights)
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        for name in ("time_budget", "max_minutes"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number of minutes, not {v}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("--max-steps must be 1 or more")
        if not (math.isfinite(self.checkpoint_minutes) and self.checkpoint_minutes >= 0):
            raise ValueError("--checkpoint-minutes must be 0 (only at epoch ends) or more")
        world = torchrun_world()[0]
        if self.batch_size < 1 or self.epoch_size < self.batch_size * world:
            raise ValueError(f"--epoch-size ({self.epoch_size}) must hold at least one batch of "
                             f"--batch-size ({self.batch_size})" + (f" x {world} processes" if world > 1 else ""))
        if self.scene_context and self.arch not in ("backbone_unet", "unet", "vae_gan"):
            raise ValueError("--scene-context needs --arch backbone_unet, unet or vae_gan")
        if self.arch == "vae_gan":
            if self.latent_dim < 1:
                raise ValueError("--latent-dim must be 1 or more")
            if not (math.isfinite(self.kl_weight) and self.kl_weight >= 0):
                raise ValueError("--kl-weight must be 0 or more")
            if self.train_only != "all" or self.through_spread:
                raise ValueError("--arch vae_gan trains the whole network: leave out --train-only and --through-spread")
        if self.arch in OFFICIAL_ARCHS:
            if self.head != OFFICIAL_ARCHS[self.arch]:
                raise ValueError(f"--arch {self.arch} has a {OFFICIAL_ARCHS[self.arch]} output: "
                                 f"use --head {OFFICIAL_ARCHS[self.arch]}")
            if self.arch == "eccv16" and self.hints:
                raise ValueError("--arch eccv16 takes no hints (siggraph17 does)")
            if self.hint_branch or self.scene_context:
                raise ValueError(f"--arch {self.arch} is the paper's network as released: "
                                 "--hint-branch and --scene-context are for our U-Nets")
            if self.arch == "eccv16" and (self.correction or self.gain != 1.0 or self.bins_file):
                raise ValueError("--arch eccv16 decodes with its own bins and --temperature only: "
                                 "leave out --correction, --gain and --bins-file")
        if self.init == "official" and self.arch not in OFFICIAL_ARCHS:
            raise ValueError(f"--init official needs --arch {' or '.join(OFFICIAL_ARCHS)}")
        if self.official_file and self.init != "official":
            raise ValueError("--official-file goes with --init official")


def model_args_for(cfg: TrainConfig, n_bins: int) -> dict:
    args = {"decoder_channels": list(cfg.decoder_channels), "head": cfg.head,
            "out_stride": cfg.out_stride, "n_bins": n_bins, "temperature": cfg.temperature,
            "correction": cfg.correction, "gain": cfg.gain}
    if cfg.hints:
        args["hints"] = True
    if cfg.hint_branch:
        args["hint_branch"] = int(cfg.hint_branch)
    if cfg.scene_context:
        args["scene_context"] = int(cfg.scene_context)
    if cfg.arch == "eccv16":  # the paper's network as released; it decodes at --temperature
        return {"temperature": cfg.temperature}
    if cfg.arch in OFFICIAL_ARCHS:
        return {}
    if cfg.arch in ("backbone_unet", "vae_gan"):
        args["encoder"] = cfg.encoder
        if cfg.arch == "vae_gan":
            args["latent"] = int(cfg.latent_dim)
    elif cfg.arch != "unet":
        raise ValueError(f"architecture {cfg.arch!r} is not trainable here: use unet, backbone_unet, vae_gan, "
                         f"{' or '.join(OFFICIAL_ARCHS)}")
    return args
