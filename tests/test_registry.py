"""The model registry: which models are listed, aliases, user checkpoints found by file name,
and what load_colorizer says when weights are missing."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import colorizer
from colorizer import registry
from colorizer.models import build_model
from colorizer.weights import WeightsError, save_checkpoint

OFFICIAL = ("eccv16", "siggraph17")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_unet_checkpoint(path, seed=0):
    args = {"channels": [8, 8, 8, 8, 8], "decoder_channels": [8, 8, 8], "head": "regression"}
    torch.manual_seed(seed)
    model = build_model("unet", **args)
    with torch.no_grad():
        model.head.conv.bias.copy_(torch.tensor([0.3, 0.2]))  # ab = (33, 22): reddish
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2)  # statistics a trained network would have
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    save_checkpoint(path, model, "unet", args, meta={"input_size": 64})
    return model


def names(rows):
    return [r["name"] for r in rows]


def test_weights_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("COLORIZER_WEIGHTS_DIR", raising=False)
    assert registry.weights_dir() == registry.DEFAULT_WEIGHTS_DIR
    assert registry.DEFAULT_WEIGHTS_DIR.name == "weights"
    monkeypatch.setenv("COLORIZER_WEIGHTS_DIR", str(tmp_path))
    assert registry.weights_dir() == tmp_path
    assert registry.resolve("eccv16").path == tmp_path / "colorization_release_v2-9b330a0b.pth"


def test_nothing_listed_without_weights(empty_weights_dir):
    assert colorizer.list_models() == []
    rows = colorizer.list_models(include_missing=True)
    assert set(OFFICIAL) | {colorizer.DEFAULT_MODEL} <= set(names(rows))
    assert all(r["available"] is False for r in rows)


def test_only_models_with_weights_are_listed(tiny_weights_dir):
    rows = colorizer.list_models()
    assert names(rows) == [colorizer.DEFAULT_MODEL]
    row = rows[0]
    assert row["available"] is True
    assert row["aliases"] == ["default"]
    assert row["path"] == str(tiny_weights_dir / "lite0_scene.pt")
    assert row["arch"] == "backbone_unet" and row["input_size"] == 256
    for key in ("description", "trained_on", "scores", "official"):
        assert key in row


def test_include_missing_lists_the_official_models_as_unavailable(tiny_weights_dir):
    rows = {r["name"]: r for r in colorizer.list_models(include_missing=True)}
    for name in OFFICIAL:
        assert rows[name]["available"] is False
        assert rows[name]["official"] is True
        assert rows[name]["path"].startswith(str(tiny_weights_dir))
    assert rows[colorizer.DEFAULT_MODEL]["available"] is True


def test_official_weights_listed_once_present(tiny_weights_dir):
    entry = registry.resolve("siggraph17")
    entry.path.write_bytes(b"placeholder")  # presence is all that listing looks at
    assert "siggraph17" in names(colorizer.list_models())
    assert "siggraph17.pt" not in [p.name for p in tiny_weights_dir.glob("*.pt")]
    assert "siggraph17" not in [n for n in names(colorizer.list_models()) if n != "siggraph17"]


def test_default_alias_resolves(tiny_weights_dir):
    assert registry.resolve("default").name == colorizer.DEFAULT_MODEL
    assert registry.resolve("  default ").name == colorizer.DEFAULT_MODEL
    assert registry.resolve(colorizer.DEFAULT_MODEL) == registry.resolve("default")
    c = colorizer.load_colorizer("default", device="cpu")
    assert c.name == colorizer.DEFAULT_MODEL
    assert c.input_size == 128  # the checkpoint's meta wins over the registry's 256
    assert colorizer.load_colorizer("default", device="cpu", input_size=96).input_size == 96
    assert "Colorizer('lite0-scene'" in repr(c)


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_resolve_needs_a_name(bad):
    with pytest.raises(colorizer.ModelNotFoundError, match="a model name is needed"):
        registry.resolve(bad)


def test_user_checkpoint_is_listed_and_loadable(tiny_weights_dir):
    model = tiny_unet_checkpoint(tiny_weights_dir / "mymodel.pt")
    rows = {r["name"]: r for r in colorizer.list_models()}
    assert set(rows) == {colorizer.DEFAULT_MODEL, "mymodel"}
    assert rows["mymodel"]["available"] is True
    assert rows["mymodel"]["official"] is False
    assert "mymodel.pt" in rows["mymodel"]["description"]
    c = colorizer.load_colorizer("mymodel", device="cpu")
    assert c.name == "mymodel" and c.input_size == 64
    assert c.info["arch"] == "unet" and c.info["model_args"]["head"] == "regression"
    # the loaded network (BatchNorm folded for inference) computes what the saved one does
    # (fp16 in the file)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(c.model(x), model.eval()(x), atol=2e-2, rtol=1e-2)
    g = np.tile(np.linspace(0, 255, 70, dtype=np.uint8), (50, 1))
    out = c.colorize(g)
    assert out.shape == (50, 70, 3) and out.dtype == np.uint8
    red = out[..., 0].astype(int) - out[..., 2].astype(int)
    assert red[:, 10:60].mean() > 5  # the bias towards ab = (33, 22) shows


def test_user_checkpoint_cannot_shadow_registered_names(tiny_weights_dir):
    tiny_unet_checkpoint(tiny_weights_dir / "default.pt")
    tiny_unet_checkpoint(tiny_weights_dir / "eccv16.pt")
    listed = names(colorizer.list_models(include_missing=True))
    assert listed.count("eccv16") == 1 and "default" not in listed
    assert registry.resolve("default").name == colorizer.DEFAULT_MODEL
    assert registry.resolve("eccv16").official


def test_other_files_in_the_weights_folder_are_ignored(tiny_weights_dir):
    (tiny_weights_dir / "notes.txt").write_text("hello")
    (tiny_weights_dir / "mymodel.pt.resume").write_bytes(b"x")
    (tiny_weights_dir / "mymodel.log").write_text("epoch 1")
    assert names(colorizer.list_models()) == [colorizer.DEFAULT_MODEL]


def test_unknown_model(tiny_weights_dir):
    tiny_unet_checkpoint(tiny_weights_dir / "mymodel.pt")
    with pytest.raises(colorizer.ModelNotFoundError) as ei:
        colorizer.load_colorizer("mymodle")
    msg = str(ei.value)
    assert "unknown model 'mymodle'" in msg and "mymodel" in msg and "eccv16" in msg


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_model_without_weights_says_how_to_fetch(tiny_weights_dir, name):
    with pytest.raises(WeightsError) as ei:
        colorizer.load_colorizer(name)
    msg = str(ei.value)
    assert f"python -m colorizer weights fetch {name}" in msg
    assert str(tiny_weights_dir) in msg
    assert registry.resolve(name).weights in msg


def test_damaged_official_weights_are_refused(tiny_weights_dir):
    registry.resolve("eccv16").path.write_bytes(b"partial download")
    with pytest.raises(WeightsError, match="sha256"):
        colorizer.load_colorizer("eccv16")


def test_unreadable_user_checkpoint_is_listed_but_refused(tiny_weights_dir):
    (tiny_weights_dir / "broken.pt").write_bytes(b"\x00" * 100)
    assert "broken" in names(colorizer.list_models())
    with pytest.raises(WeightsError, match="broken.pt"):
        colorizer.load_colorizer("broken")


def test_scores_are_read_from_the_results_files():
    """Each shipped model's scores come from its docs/results file (rounded as shown), with the
    gray baseline beside them; a model without a results file has none."""
    cls = registry.resolve("lite0-cls")
    assert cls.results.file == "lite0_cls_eval.json" and cls.results.path.is_file()
    got = cls.set_scores["test/kodak24"]
    assert got.file == "lite0_cls_eval.json" and got.baseline_file == "seed_eval_part2.json"
    assert got.as_dict() == {"psnr": 21.04, "gray_psnr": 22.0, "ssim": 0.917, "de2000": 11.79,
                             "gray_de2000": 12.12, "colorfulness_ratio": 0.93}
    assert cls.set_scores["val/imagenette_val1000"].baseline_file == "gray_v1_eval.json"
    assert cls.scores["val/imagenette_val1000"]["gray_de2000"] == 10.51
    scene = registry.resolve("lite0-scene").scores
    assert list(scene) == ["val/imagenet_val", "test/kodak24", "test/bsds500_test", "test/mcmaster18"]
    assert scene["val/imagenet_val"] == {"psnr": 22.94, "gray_psnr": 22.39, "ssim": 0.929, "de2000": 10.89,
                                         "gray_de2000": 11.47, "colorfulness_ratio": 0.73,
                                         "below_half_colorfulness": 0.24}
    vae = registry.resolve("vae-gan")
    assert vae.results.model == "vae-gan" and vae.scores["test/kodak24"]["psnr"] == 22.6
    for name in ("eccv16", "siggraph17"):
        assert registry.resolve(name).scores is None
    assert "32.3%" in registry.resolve("eccv16").paper_note
    missing = dataclasses.replace(cls, results=registry.ResultsFile("no_such_file.json"))
    assert missing.scores is None and missing.as_dict()["scores_file"] is None


def test_names_entries_and_official_names(tiny_weights_dir):
    assert registry.names() == [e.name for e in registry.entries()] == list(registry.all_entries())
    assert registry.names(include_missing=False) == names(colorizer.list_models()) == [colorizer.DEFAULT_MODEL]
    assert registry.official_names() == [n for n in OFFICIAL]
    assert all(registry.resolve(n).source.url.endswith(registry.resolve(n).weights) for n in OFFICIAL)
    assert all(registry.resolve(n).source is None for n in registry.names() if n not in OFFICIAL)
