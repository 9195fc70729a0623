"""Where and how long a training process runs: the device, the autocast precision and the place
among torchrun's processes (Runtime, make_runtime), seeding, the run's log, the stop signals
(SIGTERM / SIGINT) and the stop rules (--time-budget, --max-steps, --max-minutes). Torch and the
standard library only; nothing here touches the model or the photos.
"""
from __future__ import annotations

import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .train_config import TrainConfig, torchrun_world

class RunLog:
    """The run's log: each line, time-stamped, appended to the log file and printed to stderr."""

    def __init__(self, path):
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        with open(self.path, "a") as f:
            f.write(line + "\n")
        print(line, file=sys.stderr, flush=True)


@dataclass
class Runtime:
    """Where this process trains: the device, the precision of its forward passes, and its place
    among the processes of a distributed run (torchrun sets RANK, WORLD_SIZE and LOCAL_RANK)."""
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for float32
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def flags(self, values: list[bool]) -> list[bool]:
        """Each flag true on every process when it is true on any (stops decided together)."""
        if self.world == 1:
            return list(values)
        t = torch.tensor([1.0 if v else 0.0 for v in values], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return [bool(v > 0) for v in t.tolist()]

    def mean(self, value: float) -> float:
        """The mean of every process's value (the loss of the whole global batch)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def broadcast(self, value: float) -> float:
        """rank 0's value, on every process."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.broadcast(t, 0)
        return float(t.item())


def silent(msg: str) -> None:
    """The log of every process but rank 0."""


def open_log(cfg: TrainConfig, out: Path, rt: Runtime):
    """Rank 0 logs to --log (default: OUT with .log); the other processes keep quiet."""
    return RunLog(cfg.log or str(out.with_suffix(".log"))) if rt.main else silent


def seed_everything(cfg: TrainConfig) -> None:
    """--threads, and the global random states (Python, numpy, torch) seeded with --seed."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)


def bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 matrix kernels natively (AVX-512 BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def make_runtime(cfg: TrainConfig) -> Runtime:
    world, local_rank = torchrun_world()
    want = cfg.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA GPU is visible to PyTorch here; use --device cpu")
        device = torch.device("cuda", local_rank if world > 1 else (torch.device(want).index or 0))
        torch.cuda.set_device(device)
    elif want == "cpu":
        device = torch.device("cpu")
    else:
        raise ValueError(f"--device must be auto, cpu or cuda, not {cfg.device!r}")
    precision = cfg.precision
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 is for GPUs; on a CPU use bf16 or fp32")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    rank = 0
    if world > 1:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank = torch.distributed.get_rank()
    return Runtime(device, dtype, rank, world)


class StopSignal:
    """SIGTERM / SIGINT ask the loop to checkpoint and stop after the current step."""

    def __init__(self):
        self.asked = ""
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        if self.asked:  # a second signal: the default action (a stuck run can still be stopped)
            self.restore()
            signal.raise_signal(signum)
            return
        self.asked = signal.Signals(signum).name

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def quiet_worker(worker_id: int) -> None:
    """Data workers leave SIGTERM / SIGINT to the training process, which checkpoints and stops
    them (a signal to the whole process group must not kill a worker mid-batch)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class RunClock:
    """This invocation's clock and its stop rules: a signal (SIGTERM / SIGINT), --time-budget (this
    invocation), --max-steps (this invocation) and --max-minutes (the whole run, resumed parts
    included), decided together by every process."""

    def __init__(self, cfg: TrainConfig, rt: Runtime, elapsed_s: float):
        self.cfg, self.rt = cfg, rt
        self.budget_s = cfg.max_minutes * 60 if cfg.max_minutes else None  # the whole run's time
        self.session_s = cfg.time_budget * 60 if cfg.time_budget else None  # this invocation's time
        self.t_start = time.time()
        self.run_start = self.t_start - elapsed_s
        self.last_checkpoint = self.t_start
        self.stop = StopSignal()
        self.steps = 0  # steps taken by this invocation

    def flags(self, now: float) -> list[bool]:
        """[signal, --time-budget, --max-steps, --max-minutes]: each true on every process when it
        is on any."""
        cfg = self.cfg
        return self.rt.flags([bool(self.stop.asked), bool(self.session_s and now - self.t_start > self.session_s),
                              bool(cfg.max_steps and self.steps >= cfg.max_steps),
                              bool(self.budget_s and now - self.run_start > self.budget_s)])

    def signalled(self) -> bool:
        """Whether a signal reached any process (asked at the end of an epoch)."""
        return self.rt.flags([bool(self.stop.asked)])[0]

    def checkpoint_due(self, now: float) -> bool:
        """--checkpoint-minutes passed since the resume file was last written."""
        return bool(self.cfg.checkpoint_minutes and now - self.last_checkpoint > self.cfg.checkpoint_minutes * 60)

    def reason(self, flags: list[bool]) -> str:
        """Why a run paused, for the log and the returned state."""
        if flags[0]:
            return f"stopped by {self.stop.asked or 'a signal to another process of the run'}"
        if flags[1]:
            return f"time budget of {self.cfg.time_budget} minutes reached"
        return f"--max-steps {self.cfg.max_steps} taken"
