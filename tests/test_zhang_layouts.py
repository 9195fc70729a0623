"""ECCV16 / SIGGRAPH17 reimplementations: state-dict layout vs the official files, forward shapes,
and the official-weights download / loading helpers (no real internet: loopback only)."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import json
import threading

import pytest
import torch

from colorizer import registry, weights
from colorizer.models import build_model
from colorizer.models.eccv16 import ECCV16
from colorizer.models.siggraph17 import SIGGRAPH17, suggestion_ab_grid, top_k_ab
from colorizer.weights import WeightsError, fetch_official, load_official

NAMES = ("eccv16", "siggraph17")
N_TENSORS = {"eccv16": 82, "siggraph17": 107}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: build_model(name).eval() for name in NAMES}


# --- layout ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_matches_official_layout(name, models, specs_dir):
    spec = json.loads((specs_dir / "zhang_state_dict_layouts.json").read_text())[name]
    sd = models[name].state_dict()
    assert len(spec) == N_TENSORS[name]
    missing = sorted(set(spec) - set(sd))
    extra = sorted(set(sd) - set(spec))
    assert not missing and not extra, f"missing {missing}, unexpected {extra}"
    wrong = {k: (list(sd[k].shape), spec[k]) for k in spec if list(sd[k].shape) != spec[k]}
    assert not wrong, wrong


@pytest.mark.parametrize("name", NAMES)
def test_tensor_count_without_spec(name, models):
    assert len(models[name].state_dict()) == N_TENSORS[name]


# --- forward ---------------------------------------------------------------------------------
def test_eccv16_forward_shapes(models):
    m = models["eccv16"]
    assert (m.input_multiple, m.accepts_hints, m.head_kind) == (8, False, "classification")
    l_norm = torch.rand(1, 1, 64, 64) - 0.5
    with torch.no_grad():
        logits = m(l_norm)
        assert logits.shape == (1, 313, 16, 16)
        assert torch.all(m.decode(logits) == 0)  # fresh model: no bins yet -> gray
        bins = torch.stack([torch.linspace(-100, 100, 313), torch.linspace(50, -50, 313)], 1)
        fresh = ECCV16(bins=bins)
        assert torch.allclose(fresh.bins, bins, atol=1e-4)
        fresh.load_state_dict(m.state_dict())
        fresh.set_bins(bins)
        fresh.eval()
        ab = fresh.decode(logits)
        assert ab.shape == (1, 2, 16, 16)
        assert ab[:, 0].abs().max() <= 100 + 1e-3 and ab[:, 1].abs().max() <= 50 + 1e-3
        # the annealed mean at T=1 is the released plain softmax mean
        assert torch.allclose(fresh.decode(logits, temperature=1.0), ab, atol=1e-5)
        assert not torch.allclose(fresh.decode(logits, temperature=0.38), ab)
    with pytest.raises(ValueError):
        m(l_norm, torch.zeros(1, 3, 64, 64))


def test_siggraph17_forward_with_and_without_hints(models):
    m = models["siggraph17"]
    assert (m.input_multiple, m.accepts_hints) == (8, True)
    l_norm = torch.rand(1, 1, 64, 64) - 0.5
    hints = torch.zeros(1, 3, 64, 64)
    hints[0, 0, 30:34, 30:34] = 0.5  # a = 55
    hints[0, 1, 30:34, 30:34] = -0.3  # b = -33
    hints[0, 2, 30:34, 30:34] = 1.0
    with torch.no_grad():
        plain = m.predict_ab(l_norm)
        hinted = m.predict_ab(l_norm, hints)
        zeros = m.predict_ab(l_norm, torch.zeros(1, 3, 64, 64))
    assert plain.shape == hinted.shape == (1, 2, 64, 64)
    assert plain.abs().max() <= 110
    assert torch.equal(plain, zeros)  # no hints == all-zero hints
    assert (hinted - plain).abs().max() > 1e-4  # hints change the output
    with pytest.raises(ValueError):
        m.predict_ab(l_norm, torch.zeros(1, 3, 32, 32))


def test_siggraph17_suggestions(models):
    grid = suggestion_ab_grid()
    assert grid.shape == (529, 2)
    assert grid[0].tolist() == [-110, -110] and grid[1].tolist() == [-110, -100]
    assert grid[23].tolist() == [-100, -110] and grid[528].tolist() == [110, 110]
    m = models["siggraph17"]
    l_norm = torch.rand(1, 1, 32, 32) - 0.5
    with torch.no_grad():
        dist = m.suggest_distribution(l_norm)
    assert dist.shape == (1, 529, 8, 8)
    assert torch.allclose(dist.sum(1), torch.ones(1, 8, 8), atol=1e-4)
    ab, prob = top_k_ab(dist, 2, 3, k=5)
    assert ab.shape == (1, 5, 2) and prob.shape == (1, 5)
    assert torch.all(prob[:, :-1] >= prob[:, 1:])
    assert torch.equal(prob[0, 0], dist[0, :, 2, 3].max())
    # suggest_colors takes full-resolution pixel coordinates
    ab2, prob2 = m.suggest_colors(l_norm, 2 * 4 + 1, 3 * 4 + 2, k=5)
    assert torch.equal(ab2, ab) and torch.allclose(prob2, prob)


# --- official weights: loading -----------------------------------------------------------------
def _entry_for(path, url="http://127.0.0.1:9/none.pth"):
    data = path.read_bytes()
    return {"file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "url": url}


def _use(monkeypatch, name, entry):
    """Point the registry's official `name` at another file ({file, bytes, sha256, url})."""
    src = registry.WeightsSource(url=entry["url"], sha256=entry["sha256"], bytes=entry["bytes"])
    monkeypatch.setitem(registry.REGISTRY, name,
                        dataclasses.replace(registry.REGISTRY[name], weights=entry["file"], source=src))


def test_load_official_round_trip(models, tmp_path, monkeypatch):
    m = models["eccv16"]
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd["model_out.weight"] = torch.randn_like(sd["model_out.weight"])  # stand-in bin centres
    path = tmp_path / "eccv16_official.pth"
    torch.save(sd, path)
    _use(monkeypatch, "eccv16", _entry_for(path))
    loaded = load_official("eccv16", path)
    assert isinstance(loaded, ECCV16) and not loaded.training
    got = loaded.state_dict()
    assert list(got) == list(sd)
    assert all(torch.equal(got[k], sd[k]) for k in sd)


def test_load_official_siggraph17_round_trip(models, tmp_path, monkeypatch):
    path = tmp_path / "siggraph17_official.pth"
    torch.save(models["siggraph17"].state_dict(), path)
    _use(monkeypatch, "siggraph17", _entry_for(path))
    loaded = load_official("siggraph17", path)
    assert isinstance(loaded, SIGGRAPH17)
    want = models["siggraph17"].state_dict()
    assert all(torch.equal(v, want[k]) for k, v in loaded.state_dict().items())


def test_load_official_wrong_sha256(tmp_path, monkeypatch):
    path = tmp_path / "eccv16_official.pth"
    torch.save({"x": torch.zeros(3)}, path)
    entry = _entry_for(path) | {"sha256": "0" * 64}
    _use(monkeypatch, "eccv16", entry)
    with pytest.raises(WeightsError, match="damaged"):
        load_official("eccv16", path)


def test_load_official_wrong_layout(tmp_path, monkeypatch):
    path = tmp_path / "not_eccv16.pth"
    torch.save({"x": torch.zeros(3)}, path)
    _use(monkeypatch, "eccv16", _entry_for(path))
    with pytest.raises(WeightsError, match="does not fit ECCV16"):
        load_official("eccv16", path)


def test_load_official_missing_and_unknown(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_official("eccv16", tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="eccv16, siggraph17"):
        load_official("vgg", tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="eccv16, siggraph17"):
        fetch_official("vgg", tmp_path)


def test_official_table():
    for name in NAMES:
        e = weights.OFFICIAL_WEIGHTS[name]
        assert e["url"].startswith("https://") and e["url"].endswith(e["file"])
        assert len(e["sha256"]) == 64 and e["file"].split("-")[-1].split(".")[0] in e["sha256"][:8]
        assert e["bytes"] > 100_000_000
        # the table is the registry's facts, nothing of its own
        entry = registry.REGISTRY[name]
        assert (e["file"], e["url"], e["sha256"], e["bytes"]) == (
            entry.weights, entry.source.url, entry.source.sha256, entry.source.bytes)
    assert registry.official_names() == list(NAMES)


# --- official weights: fetching (loopback only) ------------------------------------------------
def test_fetch_official_unreachable(tmp_path, monkeypatch):
    url = "http://127.0.0.1:9/colorization_release_v2-9b330a0b.pth"  # discard port: closed
    entry = dict(weights.OFFICIAL_WEIGHTS["eccv16"], url=url)
    _use(monkeypatch, "eccv16", entry)
    dest = tmp_path / "w"
    with pytest.raises(WeightsError) as info:
        fetch_official("eccv16", dest, timeout=5)
    msg = str(info.value)
    assert url in msg and entry["sha256"] in msg and str(dest / entry["file"]) in msg
    assert list(dest.iterdir()) == []  # no temp file left behind


def test_fetch_official_keeps_good_file(tmp_path, monkeypatch):
    path = tmp_path / "small.pth"
    path.write_bytes(b"official bytes")
    _use(monkeypatch, "eccv16", _entry_for(path))  # unreachable URL
    assert fetch_official("eccv16", tmp_path, timeout=5) == path
    assert path.read_bytes() == b"official bytes"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_official_downloads_and_verifies(tmp_path, monkeypatch, loopback_server):
    root, base = loopback_server
    served = root / "model.pth"
    served.write_bytes(bytes(range(256)) * 50)
    entry = _entry_for(served, url=f"{base}/model.pth")
    _use(monkeypatch, "siggraph17", entry)
    dest = tmp_path / "dl"
    got = fetch_official("siggraph17", dest, timeout=5)
    assert got == dest / "model.pth" and got.read_bytes() == served.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["model.pth"]

    # a download that is not the expected file is refused and leaves nothing behind
    _use(monkeypatch, "siggraph17", dict(entry, sha256="f" * 64))
    dest2 = tmp_path / "dl2"
    with pytest.raises(WeightsError, match="not the expected file"):
        fetch_official("siggraph17", dest2, timeout=5)
    assert list(dest2.iterdir()) == []

    # HTTP errors (404) are WeightsErrors too
    _use(monkeypatch, "siggraph17", dict(entry, url=f"{base}/missing.pth"))
    with pytest.raises(WeightsError, match="missing.pth"):
        fetch_official("siggraph17", dest2, timeout=5)
