"""Checkpoint files and weight downloads.

A checkpoint is a torch file holding {arch, model_args, state_dict, meta}: it rebuilds its own
architecture, and loading is strict, so a file that does not fit its architecture fails loudly.
Floating tensors are stored in fp16; a checkpoint saved with int8=True (a big network that must
stay under the 25 MB we ship) stores its convolution and linear weights as int8 with one fp16
scale per output channel, in an extra `int8_scales` entry; reading it gives the weights back
as floats (max error half a step of each channel's scale).

Torch and the registry (for the official files' URL, sha256 and size); the network only in
fetch_official; gradio-free.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch

from .errors import ColorizerError
from .models import build_model, ARCHITECTURES
from .models.state_dicts import describe_mismatch
from .registry import REGISTRY, official_names

CHECKPOINT_KEYS = ("arch", "model_args", "state_dict", "meta")


class WeightsError(ColorizerError, RuntimeError):
    """A weights file is missing, damaged, or does not fit its architecture."""


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


INT8_MIN_NUMEL = 4096  # smaller tensors (biases, batch norm, small convs) stay fp16


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight tensor -> (int8 tensor, fp16 scale per output channel), symmetric rounding."""
    flat = w.detach().float().reshape(w.shape[0], -1)
    scale = (flat.abs().amax(1) / 127.0).clamp_min(1e-12).half()
    q = torch.round(flat / scale.float()[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(w.shape), scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    shape = (-1,) + (1,) * (q.dim() - 1)
    return (q.float() * scale.float().reshape(shape)).half()


def save_checkpoint(path, model, arch: str, model_args: dict, meta: dict | None = None,
                    half: bool = True, int8: bool = False) -> None:
    """Write {arch, model_args, state_dict, meta}; floating tensors in fp16 when half; with int8,
    weights of 2 or more dimensions and at least INT8_MIN_NUMEL values in int8 (see above)."""
    state = model.state_dict() if hasattr(model, "state_dict") else dict(model)
    sd, scales = {}, {}
    for k, v in state.items():
        v = v.detach().cpu()
        if int8 and v.is_floating_point() and v.dim() >= 2 and v.numel() >= INT8_MIN_NUMEL:
            sd[k], scales[k] = quantize_int8(v)
        else:
            sd[k] = v.half() if (half or int8) and v.is_floating_point() else v.clone()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    ckpt = {"arch": arch, "model_args": dict(model_args), "state_dict": sd, "meta": dict(meta or {})}
    if scales:
        ckpt["int8_scales"] = scales
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def read_checkpoint(path) -> dict:
    """Read and check a checkpoint file's structure (not yet built into a model)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise WeightsError(f"weights file {path} could not be read ({type(exc).__name__}: {exc}); "
                           "it may be truncated or not a torch checkpoint: download or train it again") from exc
    if not isinstance(ckpt, dict) or not all(k in ckpt for k in CHECKPOINT_KEYS):
        raise WeightsError(f"weights file {path} is not a colorizer checkpoint: it needs the keys "
                           f"{', '.join(CHECKPOINT_KEYS)}")
    scales = ckpt.pop("int8_scales", None)
    if scales:
        sd = ckpt["state_dict"]
        bad = [k for k in scales if k not in sd or sd[k].dtype != torch.int8 or sd[k].shape[0] != scales[k].numel()]
        if bad:
            raise WeightsError(f"weights file {path} has int8 scales that do not fit its tensors ({bad[:3]})")
        for k, sc in scales.items():
            sd[k] = dequantize_int8(sd[k], sc)
    if ckpt["arch"] not in ARCHITECTURES:
        raise WeightsError(f"weights file {path} names architecture {ckpt['arch']!r}, which this "
                           f"version does not know ({', '.join(ARCHITECTURES)})")
    return ckpt


def load_state_dict_strict(model, state_dict, source: str) -> None:
    """load_state_dict(strict=True) with a message that lists what does not fit."""
    own = model.state_dict()
    problem = describe_mismatch(own, state_dict)
    if problem:
        raise WeightsError(f"{source} does not fit {type(model).__name__}: {problem}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()}, strict=True)


def load_checkpoint(path, device: str | torch.device = "cpu"):
    """Build the model a checkpoint describes and load its weights strictly.

    Returns (model in eval mode, checkpoint dict without the state dict).
    """
    ckpt = read_checkpoint(path)
    try:
        model = build_model(ckpt["arch"], **ckpt["model_args"])
    except ValueError as exc:
        raise WeightsError(f"weights file {path}: {exc}") from exc
    load_state_dict_strict(model, ckpt["state_dict"], f"weights file {path}")
    model.to(device).eval()
    info = {k: ckpt[k] for k in ("arch", "model_args", "meta")}
    return model, info


# --- official weights of Zhang et al. (ECCV 2016, SIGGRAPH 2017) -------------------------------
# The released files are plain state dicts (not our {arch, model_args, state_dict, meta}
# checkpoints); where each is published (URL, sha256, size) is the registry's (ModelEntry.source).


@dataclass(frozen=True)
class OfficialFile:
    """An official weights file as the download and the checks need it: the registry's file name
    and its WeightsSource."""
    name: str
    file: str
    url: str
    sha256: str
    bytes: int


def official_file(name: str) -> OfficialFile:
    """The registry's facts on the official weights `name` (WeightsError for other names)."""
    entry = REGISTRY.get(name)
    if entry is None or entry.source is None:
        raise WeightsError(f"no official weights named {name!r}: choose one of "
                           f"{', '.join(official_names())}")
    src = entry.source
    return OfficialFile(name, entry.weights, src.url, src.sha256, src.bytes)


def _official_weights() -> Mapping[str, Mapping]:
    """{name: {file, bytes, sha256, url}} as OFFICIAL_WEIGHTS had them, derived from the registry."""
    return MappingProxyType({name: MappingProxyType({"file": f.file, "bytes": f.bytes, "sha256": f.sha256,
                                                     "url": f.url})
                             for name in official_names() for f in [official_file(name)]})


# Deprecated: a read-only view of the registry's facts, kept for code that imported it; change
# a model's WeightsSource in colorizer.registry instead.
OFFICIAL_WEIGHTS = _official_weights()


def _manual_hint(entry: OfficialFile, dest: Path) -> str:
    return (f"To get the file by hand, download {entry.url} (e.g. curl -L -o {dest} "
            f"{entry.url}) and place it at {dest}; it must be {entry.bytes} bytes with "
            f"sha256 {entry.sha256}")


def fetch_official(name: str, dest_dir: str | os.PathLike = "weights", timeout: float = 30) -> Path:
    """Download the official weights `name` into dest_dir (once) and return the file's path.

    The file is streamed into a temporary file next to its destination, its size and sha256
    checked, then moved into place atomically. A file already there with the right sha256 is
    kept. Network failures, and downloads that are not the expected file, raise WeightsError
    saying how to get the file by hand.
    """
    import http.client
    import socket
    import tempfile
    import urllib.error
    import urllib.request

    entry = official_file(name)
    dest_dir = Path(dest_dir)
    dest = dest_dir / entry.file
    if dest.is_file() and dest.stat().st_size == entry.bytes and sha256_of(dest) == entry.sha256:
        return dest
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=entry.file + ".", suffix=".tmp", dir=dest_dir)
    except OSError as exc:
        raise WeightsError(f"cannot write the {name} weights into {dest_dir} ({exc})") from exc
    tmp = Path(tmp_name)
    try:
        try:
            from tqdm import tqdm
        except ImportError:  # progress bar is optional
            tqdm = None
        h = hashlib.sha256()
        size = 0
        try:
            req = urllib.request.Request(entry.url, headers={"User-Agent": "colorizer"})
            with urllib.request.urlopen(req, timeout=timeout) as resp, os.fdopen(fd, "wb") as out:
                fd = None
                total = int(resp.headers.get("Content-Length") or entry.bytes)
                bar = (tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=entry.file, disable=None) if tqdm is not None else None)
                try:
                    while True:
                        block = resp.read(1 << 20)
                        if not block:
                            break
                        out.write(block)
                        h.update(block)
                        size += len(block)
                        if bar is not None:
                            bar.update(len(block))
                finally:
                    if bar is not None:
                        bar.close()
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError,
                ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            network = isinstance(exc, (urllib.error.URLError, http.client.HTTPException,
                                       socket.timeout, TimeoutError, ConnectionError))
            raise WeightsError(f"downloading the {name} weights from {entry.url} failed "
                               f"({type(exc).__name__}: {reason})"
                               + ("; the network may be unreachable from here" if network else "")
                               + f". {_manual_hint(entry, dest)}") from exc
        finally:
            if fd is not None:
                os.close(fd)
        if size != entry.bytes or h.hexdigest() != entry.sha256:
            raise WeightsError(f"the {name} weights downloaded from {entry.url} are not the "
                               f"expected file ({size} bytes, sha256 {h.hexdigest()}; expected "
                               f"{entry.bytes} bytes, sha256 {entry.sha256}). "
                               f"{_manual_hint(entry, dest)}")
        os.replace(tmp, dest)
        return dest
    finally:
        if tmp.exists():
            tmp.unlink()


def read_official_state_dict(name: str, path: str | os.PathLike, verify: bool = True) -> dict:
    """The state dict in an official ECCV16 / SIGGRAPH17 file; verify=True checks its sha256
    against the released file's (WeightsError with what to do when missing, damaged or not one)."""
    entry = official_file(name)
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"official {name} weights file {path} does not exist; get it with "
                           f"`python -m colorizer weights fetch {name}` (needs internet). "
                           f"{_manual_hint(entry, path)}")
    if verify:
        digest = sha256_of(path)
        if digest != entry.sha256:
            raise WeightsError(f"{path} is not the official {name} weights file: its sha256 is {digest}, "
                               f"expected {entry.sha256} ({entry.bytes} bytes); it is damaged "
                               f"(e.g. a partial download) or a different file: download it again "
                               f"from {entry.url}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise WeightsError(f"official {name} weights file {path} could not be read "
                           f"({type(exc).__name__}: {exc}); download it again from {entry.url}") from exc
    if isinstance(sd, dict) and all(k in sd for k in CHECKPOINT_KEYS):
        raise WeightsError(f"{path} is a colorizer checkpoint, not an official state dict: "
                           "use load_checkpoint (or train --init CHECKPOINT)")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path} is not a state dict of tensors")
    return sd


def load_official(name: str, path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Build ECCV16 / SIGGRAPH17 and load the official state dict file at `path` strictly.

    The file's sha256 is checked first. Returns the model in eval mode.
    """
    sd = read_official_state_dict(name, path, verify=True)
    try:
        model = build_model(name)
    except ValueError as exc:
        raise WeightsError(f"official {name} weights: {exc}") from exc
    load_state_dict_strict(model, sd, f"official {name} weights file {path}")
    model.to(device).eval()
    return model
