"""Training: the loop (train) and the steps it is made of. Torch; reads photos, writes checkpoints.

    python -m colorizer train --data DIR [DIR ...] --val DIR --arch backbone_unet \
        --encoder efficientnet_lite0 --head classification --out weights/NAME.pt

One epoch is --epoch-size random augmented crops, planned from (--seed, epoch) so that a run
resumes exactly. After each epoch: validation loss on --val, reduce-on-plateau learning rate, the
best epoch written to --out (fp16, ready to ship), and a resume file (--out + '.resume', full
precision with the optimizer, the scheduler, the loop's position and the random states), which is
also written every --checkpoint-minutes and on SIGTERM / SIGINT, so that --resume carries on from
the step where a run stopped. --time-budget ends this invocation cleanly (resumable); early
stopping after --patience epochs without improvement; --max-minutes bounds the whole run.
The forward passes run under autocast (bfloat16 on CPUs with native support, --precision), on
--device cpu or cuda, and under torchrun with DistributedDataParallel (gloo on CPUs, NCCL on
GPUs: each process takes its share of every batch). --adv-weight adds adversarial fine-tuning
against a patch discriminator (colorizer.losses.Adversary) and keeps every epoch's checkpoint.

The parts live beside it, one role each: colorizer/train_config.py (TrainConfig and its checks),
train_cli.py (the command's options), train_runtime.py (device, precision, processes, seeds, log,
stop rules), train_photos.py (the run's photos and validation batches), data.py (photo cache,
crop plans, batches, hints), losses.py (ColorLoss, rebalancing, Adversary) and checkpoints.py
(the resume file, per-epoch files, starting weights). Every name that used to live here is still
importable from here.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .checkpoints import (epoch_checkpoint, init_from, init_official, new_state, plan_signature, read_resume,
                          restore_resume, resume_path_for, resume_state, start_from, weights_digest, write_resume)
from .data import (IMAGE_EXTENSIONS, AugmentedCrops, BatchBuilder, HintSampling, augmented_crop, center_crops,
                   crop_sampler, epoch_plan, find_images, folder_shares, lab_batch, load_images, sample_hints)
from .losses import (AB_BINS_313, DECODE_LOSSES, Adversary, ColorLoss, SpreadThrough, delta_e94_ab,
                     rebalance_weights, soft_encode)
from .models import build_model
from .train_cli import add_arguments, main
from .train_config import OFFICIAL_ARCHS, PRECISIONS, TRAIN_ONLY, TrainConfig, model_args_for
from .train_photos import RunPhotos, TrainingPhotos, training_photos, validation_batches
from .train_runtime import (RunClock, RunLog, Runtime, StopSignal, bf16_supported, make_runtime, open_log,
                            quiet_worker, seed_everything)
from .weights import load_state_dict_strict, save_checkpoint

__all__ = ["IMAGE_EXTENSIONS", "find_images", "load_images", "lab_batch", "TrainConfig", "train"]

# the names this module held before it was split (colorizer.train.X keeps working)
_REEXPORTED = (AugmentedCrops, augmented_crop, center_crops, crop_sampler, epoch_plan, folder_shares,
               sample_hints, DECODE_LOSSES, delta_e94_ab, soft_encode, add_arguments, main, OFFICIAL_ARCHS,
               PRECISIONS, TRAIN_ONLY, RunLog, StopSignal, bf16_supported, quiet_worker, init_from,
               init_official, resume_state, TrainingPhotos)


# --- the steps of setting up ------------------------------------------------------------------

def make_optimizer(cfg: TrainConfig, model):
    """Adam (hint layers at --hint-lr-mult x the rate; only the hint branch with --train-only
    hint-branch) and the reduce-on-plateau schedule."""
    frozen = cfg.train_only == "hint-branch"
    if frozen:
        # only the hint branch learns; the rest stays exactly as it was (and in eval mode, so
        # batch norm keeps its statistics): photos without hints are colorized as before
        for n, p in model.named_parameters():
            p.requires_grad_(n.startswith("hint_branch."))
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    else:
        # the hint layers start at zero inside a trained network: they may learn at hint_lr_mult x the
        # rate (raising it to 3x or 30x hurt the photos without hints in our runs: docs/results/runs.md)
        hint_params = [p for n, p in model.named_parameters()
                       if n.startswith(("hint_stem.", "hint_mix.", "hint_branch."))]
        ids = {id(p) for p in hint_params}
        groups = [{"params": [p for p in model.parameters() if id(p) not in ids]}]
        if hint_params:
            groups.append({"params": hint_params, "lr": cfg.lr * cfg.hint_lr_mult})
    opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=cfg.lr_patience)
    return opt, sched



def class_rebalancing(cfg: TrainConfig, model, images, bins: np.ndarray, set_head: bool, log):
    """(ab bins, class weights or None): a classification model's bins (ECCV16 keeps its own, in
    its own order) and Zhang's rebalancing weights from the training photos; with set_head (a run
    that starts afresh and trains the whole network) the head decodes with them, as the loss does."""
    if cfg.head != "classification":
        return bins, None
    if cfg.arch == "eccv16":  # its bins live in its state dict (model_out), in its own order
        if not model.bins.abs().sum():
            model.set_bins(bins)
        bins = model.bins.numpy().astype(np.float32)
    _, w = rebalance_weights(images, bins, lam=cfg.rebalance_lambda)
    class_weights = torch.from_numpy(w)
    if hasattr(model, "head") and set_head:
        model.head.bins.copy_(torch.from_numpy(bins))
        model.head.log_class_weights.copy_(class_weights.log())
    log(f"{len(bins)} ab bins; rebalancing weights from {min(3000, len(images))} photos: "
        f"min {w.min():.2f} max {w.max():.2f}")
    return bins, class_weights


def place_model(cfg: TrainConfig, model, rt: Runtime) -> None:
    """Freeze what the loss does not train (SIGGRAPH17's color-suggestion head), move the model
    to the device, in the channels_last layout unless --no-channels-last."""
    if cfg.arch == "siggraph17":  # its color-suggestion head is not what the regression loss trains
        model.model_class.requires_grad_(False)
    model.to(rt.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)


def distributed(model, rt: Runtime):
    """The model as the loop calls it: itself, or wrapped in DistributedDataParallel under torchrun."""
    if rt.world == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)


def make_loss(cfg: TrainConfig, bins: np.ndarray, class_weights, device) -> ColorLoss:
    """The loss of cfg's head on the device."""
    return ColorLoss(cfg.head, cfg.regression_loss, torch.from_numpy(bins).to(device),
                     class_weights.to(device) if class_weights is not None else None,
                     cfg.decode_weight, cfg.temperature, cfg.correction, cfg.gain, cfg.ce_weight,
                     cfg.decode_loss)


# --- the loop ---------------------------------------------------------------------------------

@dataclass
class EpochPass:
    """How a pass over (the rest of) an epoch's batches ended."""
    flags: list  # [signal, --time-budget, --max-steps, --max-minutes]
    batches: int  # the epoch's number of batches
    seen: int  # crops seen by all processes in this pass
    t_start: float


@dataclass
class TrainingRun:
    """One invocation of `train`, set up: the model (and `net`, what the loop calls: the model or
    its DistributedDataParallel wrapper), its optimizer, loss and validation batches, and the loop
    state (`state`, the dict the resume file keeps). Its methods are the loop's steps."""
    cfg: TrainConfig
    rt: Runtime
    log: Callable[[str], None]
    out: Path
    resume_path: Path
    photos: RunPhotos
    model: torch.nn.Module
    net: torch.nn.Module
    model_args: dict
    opt: torch.optim.Optimizer
    sched: object
    scaler: object  # torch.amp.GradScaler for float16, else None
    adversary: Adversary | None
    loss_fn: ColorLoss
    validation: list
    hint_sampling: HintSampling | None
    plan: dict  # the crop plan's signature
    state: dict
    frozen: bool  # --train-only hint-branch
    vae: bool  # --arch vae_gan

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.rt.device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last and t.dim() == 4 else t

    def evaluate(self) -> float:
        """Validation loss in float32 (rank 0 computes it; every rank gets it)."""
        model, rt = self.model, self.rt
        val = float("nan")
        if rt.main:
            model.eval()
            tot, n = 0.0, 0
            with torch.inference_mode():
                for (l_norm, ab), hints, spread in self.validation:
                    l_norm, ab = self.to_device(l_norm), ab.to(rt.device)
                    pred = model(l_norm) if hints is None else model(l_norm, self.to_device(hints))
                    tot += float(self.loss_fn(pred.float(), ab, spread)) * len(l_norm)
                    n += len(l_norm)
            val = tot / max(1, n)
        model.train(not self.frozen)
        return rt.broadcast(val)

    def meta_for(self, epoch: int) -> dict:
        """What a shipped checkpoint says about its training."""
        cfg, state = self.cfg, self.state
        return {
            "trained_on": [str(d) for d in cfg.data] if not cfg.pack else [f"pack {cfg.pack}"],
            "validated_on": [str(d) for d in cfg.val],
            "train_photos": len(self.photos.images), "epochs": epoch, "images_seen": state["images_seen"],
            "train_minutes": round(state["elapsed_s"] / 60, 1),
            "input_size": cfg.input_size, "crop_size": cfg.crop_size, "head": cfg.head,
            "config": asdict(cfg),
        }

    def save_resume(self) -> None:
        """Write the resume file (rank 0)."""
        if self.rt.main:
            write_resume(self.resume_path, self.model, self.opt, self.sched, self.state, self.model_args,
                         self.cfg.arch, self.adversary, self.scaler, self.plan)

    def batches(self, epoch: int):
        """(the epoch's BatchBuilder, a DataLoader over its batches from the loop's step on)."""
        cfg, rt, photos = self.cfg, self.rt, self.photos
        plan = epoch_plan(cfg.seed, epoch, photos.folder_of, photos.shares, cfg.epoch_size)
        builder = BatchBuilder(photos.images, plan, cfg.seed, epoch, cfg.crop_size, cfg.batch_size,
                               self.hint_sampling, rt.rank, rt.world)
        loader = torch.utils.data.DataLoader(
            builder, batch_size=None, sampler=range(self.state["step"], len(builder)),
            num_workers=cfg.workers, prefetch_factor=4 if cfg.workers else None,
            worker_init_fn=quiet_worker if cfg.workers else None,
            generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        return builder, loader

    def step(self, l_norm, ab, hints, points) -> torch.Tensor:
        """One optimizer step (and one of the discriminator's) on a batch; its loss."""
        cfg, rt, adversary = self.cfg, self.rt, self.adversary
        spread = SpreadThrough(l_norm, points, (l_norm.shape[-2] // cfg.out_stride,
                                                l_norm.shape[-1] // cfg.out_stride)) if cfg.through_spread else None
        l_norm, ab = self.to_device(l_norm), ab.to(rt.device)
        prior_pred = None
        with rt.autocast():
            if self.vae:  # a posterior sample for the reconstruction, a prior one for the adversary
                vout = self.model.training_forward(l_norm, ab, self.to_device(hints) if cfg.hints else None,
                                                   prior=adversary is not None)
                pred, prior_pred = vout.out, vout.prior_out
            else:
                pred = self.net(l_norm, self.to_device(hints)) if cfg.hints else self.net(l_norm)
        loss = self.loss_fn(pred.float(), ab, spread)
        if self.vae:  # KL per output pixel: kl_weight 1 weighs it as the ELBO does a per-pixel likelihood
            kl = vout.kl.float().mean()
            loss = loss + cfg.kl_weight * kl / (pred.shape[-2] * pred.shape[-1])
            kv = float(kl.detach())
            self.state["run_kl"] = 0.98 * self.state.get("run_kl", kv) + 0.02 * kv
        if adversary is not None:
            judged = pred if prior_pred is None else prior_pred
            real, fake = adversary.pair(l_norm.float(), ab, self.loss_fn.decode(judged.float()))
            g_adv = adversary.generator_loss(fake)
            if g_adv is not None:
                loss = loss + g_adv
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        if adversary is not None:
            adversary.step(real, fake)
        return loss

    def train_epoch(self, epoch: int, clock: RunClock) -> EpochPass:
        """The epoch's batches from the loop's step on, until its end or a stop rule; the resume
        file every --checkpoint-minutes."""
        from tqdm import tqdm
        rt, state = self.rt, self.state
        builder, loader = self.batches(epoch)
        bar = tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False, dynamic_ncols=True,
                   disable=None, initial=state["step"], total=len(builder))
        t_ep, seen_now = time.time(), 0
        flags = [False] * 4  # signal, --time-budget, --max-steps, --max-minutes
        for l_norm, ab, hints, points in bar:
            loss = self.step(l_norm, ab, hints, points)
            n = len(l_norm) * rt.world
            seen_now += n
            clock.steps += 1
            state["step"] += 1
            state["epoch_seen"] += n
            lv = rt.mean(float(loss.detach()))
            state["run_loss"] = 0.98 * state["run_loss"] + 0.02 * lv if state["epoch_seen"] > n else lv
            bar.set_postfix(loss=f"{state['run_loss']:.4f}", img_s=f"{seen_now / (time.time() - t_ep):.1f}")
            now = time.time()
            state["elapsed_s"] = now - clock.run_start
            flags = clock.flags(now)
            if any(flags):
                break
            if clock.checkpoint_due(now):
                self.save_resume()
                clock.last_checkpoint = now
        bar.close()
        return EpochPass(flags, len(builder), seen_now, t_ep)

    def finish_epoch(self, epoch: int, ep: EpochPass, clock: RunClock) -> None:
        """Validate, step the schedule, record the epoch, keep the best (and with --keep-epochs or
        --adv-weight every) epoch's weights, write the resume file, log."""
        cfg, rt, state, adversary = self.cfg, self.rt, self.state, self.adversary
        val_loss = self.evaluate()
        self.sched.step(val_loss)
        rec = {"epoch": epoch, "train_loss": round(state["run_loss"], 5), "val_loss": round(val_loss, 5),
               "lr": self.opt.param_groups[0]["lr"],
               "img_per_s": round(ep.seen / max(1e-9, time.time() - ep.t_start), 1),
               "elapsed_min": round(state["elapsed_s"] / 60, 1)}
        if self.vae:
            rec["kl"] = round(state.get("run_kl", 0.0), 3)
        state.update(epoch=epoch, step=0, images_seen=state["images_seen"] + state["epoch_seen"],
                     epoch_seen=0, elapsed_s=time.time() - clock.run_start)
        improved = val_loss < state["best_loss"] - 1e-5
        if adversary is not None:
            rec.update(adversary.summary())
            adversary.reset_stats()
        state["history"].append(rec)
        meta = {**self.meta_for(epoch), "val_loss": round(val_loss, 5)}
        if improved:
            state["best_loss"], state["best_epoch"], state["bad_epochs"] = val_loss, epoch, 0
        else:
            state["bad_epochs"] += 1
        if rt.main:
            if improved:
                save_checkpoint(self.out, self.model, cfg.arch, self.model_args, meta, half=True)
            if adversary is not None or cfg.keep_epochs:
                # the validation loss does not measure what the discriminator adds, nor how a changed
                # mix of training photos does on other photos: every epoch is kept, to be chosen by
                # evaluation (colorfulness, realism score, the photos it is meant for) as well
                save_checkpoint(epoch_checkpoint(self.out, epoch), self.model, cfg.arch, self.model_args, meta,
                                half=True)
        self.save_resume()
        clock.last_checkpoint = time.time()
        self.log(f"epoch {epoch} " + " ".join(f"{k}={v}" for k, v in rec.items() if k != "epoch")
                 + (" best" if improved else ""))

    def epoch(self, epoch: int, clock: RunClock) -> str | None:
        """One epoch (or the rest of one); why the run stops after it, or None to go on."""
        cfg, state = self.cfg, self.state
        ep = self.train_epoch(epoch, clock)
        flags = ep.flags
        pause, out_of_time = any(flags[:3]), flags[3] and not any(flags[:3])
        if pause:
            self.save_resume()  # first: validating may take longer than a kill's grace period
            if state["step"] < ep.batches:
                return clock.reason(flags) + f" at epoch {epoch} step {state['step']}; `--resume` continues from there"
        self.finish_epoch(epoch, ep, clock)
        if not pause and clock.signalled():  # a signal during validation or saving
            pause, flags = True, [True, False, False, False]
        if pause:
            return clock.reason(flags) + " at the end of an epoch; `--resume` continues from there"
        if out_of_time:
            return f"time budget of {cfg.max_minutes} minutes reached"
        if state["bad_epochs"] >= cfg.patience:
            return f"early stop: no improvement for {cfg.patience} epochs"
        return None

    def loop(self) -> str:
        """Epochs of --epoch-size crops, validated and checkpointed, until --epochs, a stop rule or
        early stopping; why it stopped ('' after every epoch)."""
        state = self.state
        clock = RunClock(self.cfg, self.rt, state["elapsed_s"])
        self.model.train(not self.frozen)
        self.log(f"training from epoch {state['epoch'] + 1} step {state['step']}")
        try:
            while state["epoch"] < self.cfg.epochs:
                stopped = self.epoch(state["epoch"] + 1, clock)
                if stopped is not None:
                    return stopped
            return ""
        finally:
            clock.stop.restore()
            if self.rt.world > 1:
                torch.distributed.destroy_process_group()


def train(cfg: TrainConfig) -> dict:
    """Train as cfg says (see the module's docstring). Returns the loop state, with "stopped" (why
    this invocation ended, '' after every epoch) and "weights_digest"."""
    cfg.check()
    rt = make_runtime(cfg)
    seed_everything(cfg)
    out = Path(cfg.out)
    log = open_log(cfg, out, rt)
    log(f"config {json.dumps(asdict(cfg))}")
    log(f"device {rt.device}, precision {rt.dtype or 'float32'}, {rt.world} process(es), "
        f"{torch.get_num_threads()} threads each")

    # 1. photos (decoded once into the cache) and the model
    photos = training_photos(cfg, log, rt)
    bins = np.load(cfg.bins_file or AB_BINS_313).astype(np.float32)
    model_args = model_args_for(cfg, len(bins))
    model = build_model(cfg.arch, **model_args)
    frozen = cfg.train_only == "hint-branch"

    # 2. the starting point: a resume file, another checkpoint, official weights or ImageNet weights
    resume_path = resume_path_for(out)
    ck = read_resume(resume_path, cfg.arch, model_args) if cfg.resume and resume_path.exists() else None
    if ck is not None:
        load_state_dict_strict(model, ck["model"], str(resume_path))
    else:
        start_from(cfg, model, log)

    # 3. ab bins and class rebalancing (stored with the model), the device, the optimizer
    # (after the move: its state lives beside the parameters), the discriminator, the resumed state
    bins, class_weights = class_rebalancing(cfg, model, photos.images, bins, ck is None and not frozen, log)
    place_model(cfg, model, rt)
    opt, sched = make_optimizer(cfg, model)
    scaler = torch.amp.GradScaler("cuda") if rt.dtype == torch.float16 else None
    adversary = Adversary(cfg.adv_weight, cfg.disc_lr, cfg.disc_channels, cfg.adv_warmup) if cfg.adv_weight else None
    plan = plan_signature(cfg, rt.world, photos.images.cache_key)
    state = new_state()
    if ck is not None:
        state = restore_resume(ck, resume_path, plan, opt, sched, scaler, adversary)
        log(f"resumed from {resume_path} at epoch {state['epoch']} step {state['step']} "
            f"(best val loss {state['best_loss']:.4f})")

    # 4. the loss, the validation batches and the loop
    vae = cfg.arch == "vae_gan"
    if vae and rt.world > 1:
        raise ValueError("--arch vae_gan runs in one process (not under torchrun)")
    net = distributed(model, rt)
    loss_fn = make_loss(cfg, bins, class_weights, rt.device)
    validation = validation_batches(cfg, model, photos.val_images, frozen)
    hint_sampling = HintSampling(0.0 if frozen else cfg.hint_p_none, cfg.hint_mean_count) if cfg.hints else None
    run = TrainingRun(cfg, rt, log, out, resume_path, photos, model, net, model_args, opt, sched, scaler,
                      adversary, loss_fn, validation, hint_sampling, plan, state, frozen, vae)
    stopped = run.loop()

    log(f"done: {stopped or 'all epochs'}; best epoch {state['best_epoch']} "
        f"val loss {state['best_loss']:.4f}; checkpoint {out}")
    state["stopped"] = stopped
    state["weights_digest"] = weights_digest(model)
    print(f"rank {rt.rank}: weights digest {state['weights_digest']}", file=sys.stderr, flush=True)
    return state
