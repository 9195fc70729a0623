"""Long training runs: exact resume from any step, checkpoints on SIGTERM, --time-budget and
--max-steps, the photo cache, training packs, the bf16 path, and DistributedDataParallel with
gloo on two CPU processes (torchrun)."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer import data as photo_data
from colorizer.train import TrainConfig, train
from colorizer.weights import load_checkpoint

from conftest import REPO


def _photo(seed: int, h: int = 72, w: int = 88) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = rng.uniform(0, 255, 3)
    tilt = rng.uniform(-200, 200, (2, 3))
    img = base + y[..., None] * tilt[0] + x[..., None] * tilt[1] + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photo_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs_photos")
    for name, n, off in (("a", 10, 0), ("b", 6, 50), ("val", 4, 100)):
        (root / name).mkdir()
        for i in range(n):
            Image.fromarray(_photo(off + i)).save(root / name / f"{name}{i}.png")
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


def _cfg(photo_dirs, out, **kw) -> TrainConfig:
    base = dict(data=[str(photo_dirs / "a"), str(photo_dirs / "b")], val=[str(photo_dirs / "val")],
                out=str(out), arch="unet", pretrained=False, crop_size=32, batch_size=4, epoch_size=16,
                epochs=2, val_images=4, decoder_channels=[8, 8, 8], threads=1, workers=0,
                precision="fp32", checkpoint_minutes=0)
    base.update(kw)
    return TrainConfig(**base)


def _resume_file(out: Path) -> dict:
    return torch.load(out.with_name(out.name + ".resume"), map_location="cpu", weights_only=False)


def test_photo_cache_decodes_once_and_skips_broken(photo_dirs, tmp_path):
    cache = photo_data.PhotoCache.build([photo_dirs / "a", photo_dirs / "b"], 256, cache_dir=tmp_path)
    assert len(cache) == 16 and cache.folder_of == [0] * 10 + [1] * 6  # the broken JPEG is skipped
    assert np.array_equal(cache.photo(0), _photo(0)) and cache.photo(12).shape == (72, 88, 3)
    again = photo_data.PhotoCache.build([photo_dirs / "a", photo_dirs / "b"], 256, cache_dir=tmp_path)
    assert again.root == cache.root  # found, not decoded again
    # a changed folder gets a new cache
    Image.fromarray(_photo(77)).save(photo_dirs / "b" / "b_new.png")
    try:
        changed = photo_data.PhotoCache.build([photo_dirs / "a", photo_dirs / "b"], 256, cache_dir=tmp_path)
        assert changed.root != cache.root and len(changed) == 17
    finally:
        (photo_dirs / "b" / "b_new.png").unlink()


def test_epoch_plan_and_batches_are_pure_functions_of_seed_and_position(photo_dirs, tmp_path):
    cache = photo_data.PhotoCache.build([photo_dirs / "a", photo_dirs / "b"], 256, cache_dir=tmp_path)
    p1 = photo_data.epoch_plan(3, 1, cache.folder_of, [0.75, 0.25], 4000)
    assert np.array_equal(p1, photo_data.epoch_plan(3, 1, cache.folder_of, [0.75, 0.25], 4000))
    assert not np.array_equal(p1, photo_data.epoch_plan(3, 2, cache.folder_of, [0.75, 0.25], 4000))
    assert abs(np.mean(p1 < 10) - 0.75) < 0.03  # each folder its share
    b = photo_data.BatchBuilder(cache.photo, p1[:32], 3, 1, 32, 4, photo_data.HintSampling())
    l1, ab1, h1, pts1 = b[2]
    l2, ab2, h2, pts2 = b[2]
    assert torch.equal(l1, l2) and torch.equal(ab1, ab2) and torch.equal(h1, h2) and pts1 == pts2
    assert l1.shape == (4, 1, 32, 32) and h1.shape == (4, 3, 32, 32)
    # two ranks split one global batch between them: together they hold the one-process batch
    whole = photo_data.BatchBuilder(cache.photo, p1[:32], 3, 1, 32, 8)[1][0]
    r0 = photo_data.BatchBuilder(cache.photo, p1[:32], 3, 1, 32, 4, rank=0, world=2)[1][0]
    r1 = photo_data.BatchBuilder(cache.photo, p1[:32], 3, 1, 32, 4, rank=1, world=2)[1][0]
    assert torch.equal(whole[0::2], r0) and torch.equal(whole[1::2], r1)


@pytest.mark.heavy
def test_resume_from_any_step_is_exact(photo_dirs, tmp_path):
    """An uninterrupted run and one stopped twice mid-epoch (and resumed with a data worker)
    end with the same weights, bit for bit, and the same history."""
    full = train(_cfg(photo_dirs, tmp_path / "full" / "m.pt"))
    assert full["stopped"] == "" and full["epoch"] == 2
    out = tmp_path / "parts" / "m.pt"
    s1 = train(_cfg(photo_dirs, out, max_steps=3))
    assert "--max-steps 3 taken at epoch 1 step 3" in s1["stopped"]
    ck = _resume_file(out)
    assert ck["state"]["epoch"] == 0 and ck["state"]["step"] == 3
    s2 = train(_cfg(photo_dirs, out, max_steps=3, resume=True, workers=1))  # steps 4 and 5..6
    assert s2["epoch"] == 1 and s2["step"] == 2
    s3 = train(_cfg(photo_dirs, out, resume=True))
    assert s3["stopped"] == "" and s3["epoch"] == 2
    assert s3["weights_digest"] == full["weights_digest"]
    assert [h["val_loss"] for h in s3["history"]] == [h["val_loss"] for h in full["history"]]
    assert s3["images_seen"] == full["images_seen"] == 32
    log = (tmp_path / "parts" / "m.log").read_text()
    assert "resumed from" in log and "at epoch 0 step 3" in log and "at epoch 1 step 2" in log


def test_time_budget_stops_cleanly_and_resumes(photo_dirs, tmp_path):
    out = tmp_path / "tb" / "m.pt"
    s = train(_cfg(photo_dirs, out, time_budget=1e-6, epochs=1))
    assert "time budget of 1e-06 minutes reached at epoch 1 step 1" in s["stopped"]
    assert _resume_file(out)["state"]["step"] == 1
    # mid-epoch, the crops depend on the seed and the batch: changing them is refused
    with pytest.raises(ValueError, match=r"middle of an epoch .*seed 0 -> 5.*global_batch 4 -> 2"):
        train(_cfg(photo_dirs, out, resume=True, epochs=1, seed=5, batch_size=2))
    s = train(_cfg(photo_dirs, out, resume=True, epochs=1))
    assert s["epoch"] == 1 and s["stopped"] == ""
    assert load_checkpoint(out)[1]["meta"]["images_seen"] == 16


def test_bad_run_options_get_clear_messages(photo_dirs, tmp_path):
    for kw, msg in ((dict(precision="fp8"), "--precision must be one of"),
                    (dict(time_budget=-1.0), "--time-budget must be a positive number"),
                    (dict(max_steps=0), "--max-steps must be 1 or more"),
                    (dict(device="tpu"), "--device must be auto, cpu or cuda"),
                    (dict(epoch_size=2), "--epoch-size (2) must hold at least one batch")):
        with pytest.raises(ValueError) as e:
            train(_cfg(photo_dirs, tmp_path / "bad" / "m.pt", **kw))
        assert msg in str(e.value)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is visible"):
            train(_cfg(photo_dirs, tmp_path / "bad" / "m.pt", device="cuda"))
    assert not (tmp_path / "bad" / "m.pt").exists()


def _cli(*args, timeout=240, **popen):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "colorizer", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _train_args(photo_dirs, out):
    return ["train", "--data", photo_dirs / "a", photo_dirs / "b", "--val", photo_dirs / "val", "--out", out,
            "--arch", "unet", "--no-pretrained", "--crop-size", "32", "--batch-size", "4",
            "--val-images", "4", "--decoder-channels", "8", "8", "8", "--threads", "1", "--workers", "0"]


@pytest.mark.heavy
def test_sigterm_writes_a_resume_file_and_exits_cleanly(photo_dirs, tmp_path):
    out = tmp_path / "sig" / "m.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [*map(str, _train_args(photo_dirs, out)), "--epoch-size", "400000", "--epochs", "1"]
    args[args.index("--workers") + 1] = "1"  # a data worker too: the signal goes to the whole group
    proc = subprocess.Popen([sys.executable, "-m", "colorizer", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    log = out.with_suffix(".log")
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and "training from epoch 1 step 0" in log.read_text()):
        time.sleep(0.2)
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGTERM)  # as a scheduler's preemption or `timeout` would
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    text = log.read_text()
    assert re.search(r"done: stopped by SIGTERM at epoch 1 step \d+; `--resume` continues", text), text
    step = _resume_file(out)["state"]["step"]
    assert step >= 1
    p = _cli(*_train_args(photo_dirs, out), "--epoch-size", "400000", "--epochs", "1", "--resume",
             "--max-steps", "2")
    assert p.returncode == 0, p.stderr
    assert f"resumed from {out}.resume at epoch 0 step {step}" in log.read_text()
    assert _resume_file(out)["state"]["step"] == step + 2


@pytest.mark.heavy
def test_pack_is_small_and_trains(photo_dirs, tmp_path):
    pack = tmp_path / "pack"
    p = _cli("pack", photo_dirs / "a", photo_dirs / "b", "-o", pack, "--data-weights", "1", "1",
             "--max-mb", "0.1", "--size", "48")
    assert p.returncode == 0, p.stderr
    assert "crops of 48 x 48" in p.stdout
    cache = photo_data.PhotoCache(pack)
    assert cache.meta["bytes"] <= 0.1 * 2**20 and len(cache) == 13  # 15 fit: 7 of a, all 6 of b
    assert cache.photo(0).shape == (48, 48, 3)
    out = tmp_path / "pk" / "m.pt"
    p = _cli("train", "--pack", pack, "--out", out, "--arch", "unet", "--no-pretrained", "--crop-size", "32",
             "--batch-size", "4", "--epoch-size", "8", "--epochs", "1", "--decoder-channels", "8", "8", "8",
             "--threads", "1", "--workers", "0")
    assert p.returncode == 0, p.stderr
    assert load_checkpoint(out)[1]["meta"]["trained_on"] == [f"pack {pack}"]
    p = _cli("pack", photo_dirs / "a", "-o", tmp_path / "p2", "--max-mb", "-1")
    assert p.returncode == 2 and "--max-mb must be a positive number" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.heavy
def test_bf16_path_trains(photo_dirs, tmp_path):
    """The autocast path (the default on CPUs with native bfloat16) lowers the loss as float32 does."""
    kw = dict(epochs=4, epoch_size=32, head="regression", lr=1e-3)
    s32 = train(_cfg(photo_dirs, tmp_path / "f32" / "m.pt", **kw))
    s16 = train(_cfg(photo_dirs, tmp_path / "b16" / "m.pt", precision="bf16", **kw))
    v32 = [h["val_loss"] for h in s32["history"]]
    v16 = [h["val_loss"] for h in s16["history"]]
    assert min(v16[1:]) < v16[0] and min(v32[1:]) < v32[0]
    assert abs(min(v16) - min(v32)) / min(v32) < 0.1, (v16, v32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.heavy
def test_torchrun_two_gloo_processes_train_one_model(photo_dirs, tmp_path):
    """2 processes (gloo, CPU) with batch 4 each: identical weights on both ranks, and the loss of
    a 1-process run with batch 8 on the same crops."""
    out2 = tmp_path / "ddp" / "m.pt"
    args = ["--epoch-size", "32", "--epochs", "2", "--head", "regression", "--precision", "fp32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                        "-m", "colorizer", *map(str, _train_args(photo_dirs, out2)), *args],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    digests = dict(re.findall(r"rank (\d): weights digest ([0-9a-f]{16})", p.stderr))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], p.stderr[-2000:]
    log = out2.with_suffix(".log").read_text()
    assert "2 process(es)" in log
    out1 = tmp_path / "one" / "m.pt"
    a1 = _train_args(photo_dirs, out1)
    a1[a1.index("--batch-size") + 1] = "8"
    p1 = _cli(*a1, *args)
    assert p1.returncode == 0, p1.stderr
    d1 = re.findall(r"rank 0: weights digest ([0-9a-f]{16})", p1.stderr)
    assert d1 and d1[0] != digests["0"]  # batch norm sees half batches: close, not identical
    v2 = _resume_file(out2)["state"]["history"]
    v1 = _resume_file(out1)["state"]["history"]
    assert [h["epoch"] for h in v2] == [1, 2] and len(v1) == 2
    for a, b in zip(v2, v1):
        assert abs(a["val_loss"] - b["val_loss"]) / b["val_loss"] < 0.05, (v2, v1)
        assert abs(a["train_loss"] - b["train_loss"]) / b["train_loss"] < 0.1, (v2, v1)
    assert _resume_file(out2)["state"]["images_seen"] == 64


def test_scene_context_starts_as_the_model_it_comes_from(tmp_path):
    from colorizer.models import build_model
    from colorizer.models.inference import optimize_for_inference
    from colorizer.train import init_from
    from colorizer.weights import save_checkpoint
    args = dict(encoder="efficientnet_lite0", decoder_channels=[16, 16, 16], head="classification",
                n_bins=313, hints=True)
    torch.manual_seed(0)
    base = build_model("backbone_unet", **args).eval()
    save_checkpoint(tmp_path / "base.pt", base, "backbone_unet", args, half=False)
    ctx = build_model("backbone_unet", **args, scene_context=32).eval()
    init_from(ctx, tmp_path / "base.pt")
    x = torch.rand(2, 1, 64, 96) - 0.5
    hints = torch.zeros(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(base(x), ctx(x)) and torch.equal(base(x, hints), ctx(x, hints))
        # once its projections have learned something, the scene vector changes the colours
        torch.nn.init.normal_(ctx.context.to_out.weight, std=0.1)
        y = ctx(x)
        assert not torch.allclose(base(x), y)
        fast = optimize_for_inference(ctx)
        assert torch.allclose(fast(x.contiguous(memory_format=torch.channels_last)), y, atol=1e-4)


@pytest.mark.parametrize("arch,head,extra", [("eccv16", "classification", []),
                                              ("siggraph17", "regression", ["--hints"])])
@pytest.mark.heavy
def test_finetune_official_networks(photo_dirs, tmp_path, arch, head, extra):
    """train --arch eccv16|siggraph17 --init official: every key and shape of the official layout
    kept, the loss falls, and the checkpoint loads in the registry like any other model."""
    import json
    import colorizer
    from colorizer.models import build_model
    torch.manual_seed(1)
    official = build_model(arch)
    layout = {k: tuple(v.shape) for k, v in official.state_dict().items()}
    spec = REPO.parent / "shared" / "specs" / "zhang_state_dict_layouts.json"
    if spec.is_file():  # the released files' layout, where the project's specs are at hand
        assert layout == {k: tuple(v) for k, v in json.loads(spec.read_text())[arch].items()}
    sd_file = tmp_path / f"{arch}_random_official_layout.pth"
    torch.save(official.state_dict(), sd_file)
    wdir = tmp_path / "weights"
    out = wdir / f"ft_{arch}.pt"
    args = ["train", "--data", photo_dirs / "a", photo_dirs / "b", "--val", photo_dirs / "val", "--out", out,
            "--arch", arch, "--head", head, "--init", "official", "--official-file", sd_file, *extra,
            "--crop-size", "32", "--batch-size", "4", "--epoch-size", "16", "--epochs", "3", "--lr", "1e-4",
            "--val-images", "4", "--threads", "2", "--workers", "0", "--keep-epochs"]
    p = _cli(*args)
    assert p.returncode == 0, p.stderr[-3000:]
    log = out.with_suffix(".log").read_text()
    assert f"initialized from the official {arch} weights in {sd_file}" in log
    hist = _resume_file(out)["state"]["history"]
    assert min(h["val_loss"] for h in hist[1:]) < hist[0]["val_loss"] or \
        hist[-1]["train_loss"] < hist[0]["train_loss"], hist
    ck = torch.load(out, map_location="cpu", weights_only=True)
    assert ck["arch"] == arch and {k: tuple(v.shape) for k, v in ck["state_dict"].items()} == layout
    env_before = os.environ.get("COLORIZER_WEIGHTS_DIR")
    os.environ["COLORIZER_WEIGHTS_DIR"] = str(wdir)
    try:
        c = colorizer.load_colorizer(f"ft_{arch}", device="cpu")
        rgb = c.colorize(_photo(5))
        assert rgb.shape == (72, 88, 3) and rgb.dtype == np.uint8
    finally:
        if env_before is None:
            os.environ.pop("COLORIZER_WEIGHTS_DIR")
        else:
            os.environ["COLORIZER_WEIGHTS_DIR"] = env_before


@pytest.mark.heavy
def test_finetune_official_needs_the_file_and_the_right_options(photo_dirs, tmp_path):
    env = {**os.environ, "COLORIZER_WEIGHTS_DIR": str(tmp_path / "empty_weights"), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "colorizer", "train", "--data", str(photo_dirs / "a"), "--out",
            str(tmp_path / "w" / "x.pt"), "--epoch-size", "8", "--batch-size", "4", "--crop-size", "32"]
    cases = [(["--arch", "eccv16", "--init", "official"],
              "weights file", "python -m colorizer weights fetch eccv16"),
             (["--arch", "siggraph17", "--init", "official"], "use --head regression", None),
             (["--arch", "backbone_unet", "--init", "official"], "--init official needs --arch eccv16 or siggraph17", None),
             (["--arch", "eccv16", "--hints"], "--arch eccv16 takes no hints", None)]
    for extra, msg, msg2 in cases:
        p = subprocess.run(base + extra, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, p.stderr
        assert msg in p.stderr and "Traceback" not in p.stderr, p.stderr
        if msg2:
            assert msg2 in p.stderr
    assert not (tmp_path / "w" / "x.pt").exists()
