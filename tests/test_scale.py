"""Archive-scale colorization: `colorize --workers N` (colorizer/batch.py) and `colorize-ray`
(colorizer/scale.py, Ray Data), against the plain single-process `colorize` on the same photos.

All runs use the tiny random default model (conftest.py). The Ray tests skip without Ray
(requirements-scale.txt); all but one share one local Ray session of 2 CPUs started once for the
module, and the remaining one runs the real command, which starts and stops its own.

Byte-identical means: at the same number of torch threads per process. oneDNN's convolutions
sum in a different order with another thread count, which can move a pixel by one level; so the
single-process reference runs with the thread count that each worker process gets.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorizer import cli
from colorizer.batch import cores, find_photos, output_names

from conftest import REPO

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.heavy]

# the photos, relative to the input folder, and the outputs the plain CLI gives them
PHOTOS = ["a.png", "b.jpg", "gray.png", "other/photo.jpg", "sub/c.png", "sub/photo.png"]
OUTPUTS = ["a.png", "b.png", "c.png", "gray.png", "photo.png", "photo_2.png"]
DAMAGED = ["cut.jpg", "notes.png"]


def synthetic(seed: int, h: int, w: int) -> np.ndarray:
    """Smooth colour waves with a little noise: image-like, different per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    chans = [0.5 + 0.25 * np.sin(rng.uniform(2, 9) * x + rng.uniform(0, 6)) +
             0.25 * np.cos(rng.uniform(2, 9) * y + rng.uniform(0, 6)) for _ in range(3)]
    img = np.stack(chans, -1) * 255 + rng.normal(0, 5, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_photos(root: Path, damaged: bool = False) -> Path:
    for i, rel in enumerate(PHOTOS):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(synthetic(i, 36 + 5 * i, 52 - 3 * i))
        if rel.startswith("gray"):
            img = img.convert("L")
        img.save(p, **({"quality": 92} if p.suffix == ".jpg" else {}))
    if damaged:
        whole = (root / "b.jpg").read_bytes()
        (root / "cut.jpg").write_bytes(whole[:len(whole) // 2])  # a truncated JPEG
        (root / "notes.png").write_text("a text file, not a PNG\n" * 20)
    return root


def files_of(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def run_cli(*args, weights_dir, threads: int = 1, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLORIZER_WEIGHTS_DIR=str(weights_dir), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "colorizer", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def no_traceback(p: subprocess.CompletedProcess):
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr


def manifest_rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


# --- the shared pieces ---------------------------------------------------------------------------

def test_listing_and_names(tmp_path):
    src = make_photos(tmp_path / "in", damaged=True)
    (src / "readme.txt").write_text("not a photo")
    listing = find_photos([src, tmp_path / "absent"])
    assert [p.relative_to(src).as_posix() for p in listing.files] == sorted(PHOTOS + DAMAGED)
    assert listing.missing == [tmp_path / "absent"]
    good = find_photos([src]).files
    good = [p for p in good if p.name not in DAMAGED]
    assert sorted(p.name for p in output_names(good, tmp_path)) == OUTPUTS
    jpgs = output_names(good, tmp_path / "o", ".jpg")
    assert sorted(p.name for p in jpgs) == [n.replace(".png", ".jpg") for n in OUTPUTS]
    assert all(p.parent == tmp_path / "o" for p in jpgs)


# --- colorize --workers N ------------------------------------------------------------------------

def test_workers_2_writes_the_same_files_as_workers_1(tiny_weights_dir, tmp_path):
    src = make_photos(tmp_path / "in", damaged=True)
    threads = max(1, cores() // 2)  # what each of the 2 worker processes gets
    one = run_cli("colorize", src, "-o", tmp_path / "one", "-q", weights_dir=tiny_weights_dir,
                  threads=threads)
    two = run_cli("colorize", src, "-o", tmp_path / "two", "-q", "--workers", "2",
                  weights_dir=tiny_weights_dir)
    for p in (one, two):
        no_traceback(p)
        assert p.returncode == 1, p.stdout + p.stderr  # the damaged photos were skipped
        assert "colorized 6 of 8 photo(s)" in p.stdout
        assert f"2 skipped: {src / 'cut.jpg'}, {src / 'notes.png'}" in p.stdout
        assert f"skipped {src / 'cut.jpg'}: " in p.stderr and "damaged or truncated" in p.stderr
        assert f"skipped {src / 'notes.png'}: " in p.stderr and "not an image file" in p.stderr
    a, b = files_of(tmp_path / "one"), files_of(tmp_path / "two")
    assert sorted(a) == OUTPUTS
    assert sorted(b) == OUTPUTS  # nothing else either: no temporary files left behind
    for name in OUTPUTS:
        assert a[name] == b[name], name
    for name, i in (("photo.png", 3), ("photo_2.png", 5)):  # other/photo.jpg, then sub/photo.png
        with Image.open(tmp_path / "two" / name) as im:
            assert im.mode == "RGB" and im.size == (52 - 3 * i, 36 + 5 * i)


def test_workers_errors_are_one_line(tiny_weights_dir, tmp_path, capsys):
    src = make_photos(tmp_path / "in")
    out = tmp_path / "out"
    assert cli.main(["colorize", str(src), "-o", str(out), "--workers", "2", "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown model 'nope'" in err and "Traceback" not in err
    assert not out.exists()
    assert cli.main(["colorize", str(src), "-o", str(out), "--workers", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --workers must be at least 1, not 0"
    assert cli.main(["colorize", str(src), "-o", str(out), "--workers", "2", "--model", "eccv16"]) == 2
    assert "python -m colorizer weights fetch eccv16" in capsys.readouterr().err
    assert not out.exists()


# --- colorize-ray ---------------------------------------------------------------------------------

def test_colorize_ray_without_ray_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    make_photos(tmp_path / "in")
    rc = cli.main(["colorize-ray", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip() == "error: colorize-ray needs Ray: pip install -r requirements-scale.txt"
    assert not (tmp_path / "out").exists()


def test_colorize_ray_command_matches_plain_cli(tiny_weights_dir, tmp_path):
    """The real command on its own local Ray (--workers 2: 2 CPUs, 2 actors), damaged photos
    included: same files and bytes as the plain CLI, the damaged ones in the manifest."""
    pytest.importorskip("ray")
    src = make_photos(tmp_path / "in", damaged=True)
    plain = run_cli("colorize", src, "-o", tmp_path / "plain", "-q", weights_dir=tiny_weights_dir)
    assert plain.returncode == 1, plain.stderr
    p = run_cli("colorize-ray", src, "-o", tmp_path / "ray", "--workers", "2", "-q",
                weights_dir=tiny_weights_dir)
    no_traceback(p)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "colorized 6 of 8 photo(s) with lite0-scene" in p.stdout
    assert "2 photo(s) not colorized: names and reasons in" in p.stdout
    got, want = files_of(tmp_path / "ray"), files_of(tmp_path / "plain")
    assert sorted(got) == sorted(OUTPUTS + ["manifest.csv"])
    for name in OUTPUTS:
        assert got[name] == want[name], name
    rows = manifest_rows(tmp_path / "ray")
    assert [r["name"] for r in rows] == [str(src / "cut.jpg"), str(src / "notes.png")]
    assert "damaged or truncated" in rows[0]["reason"]
    assert "not an image" in rows[1]["reason"]


@pytest.fixture(scope="module")
def ray_session(tiny_checkpoint, tmp_path_factory):
    """One local Ray (2 CPUs) for the module, whose workers see the tiny default model."""
    ray = pytest.importorskip("ray")
    import logging
    import shutil
    weights = tmp_path_factory.mktemp("ray_weights")
    shutil.copyfile(tiny_checkpoint, weights / tiny_checkpoint.name)
    mp = pytest.MonkeyPatch()
    mp.setenv("COLORIZER_WEIGHTS_DIR", str(weights))  # before ray.init: its workers inherit it
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield weights
    ray.shutdown()
    mp.undo()


def plain_colorize(src, out: Path, capsys) -> dict[str, bytes]:
    rc = cli.main(["colorize", str(src), "-o", str(out), "-q"])
    capsys.readouterr()
    assert rc in (0, 1)
    return files_of(out)


def test_ray_rerun_skips_what_is_written(ray_session, tmp_path, capsys):
    src = make_photos(tmp_path / "in")
    out = tmp_path / "out"
    assert cli.main(["colorize-ray", str(src), "-o", str(out), "-q"]) == 0
    first = capsys.readouterr().out
    assert "colorized 6 of 6 photo(s)" in first and "skipped" not in first
    assert files_of(out) == {**plain_colorize(src, tmp_path / "plain", capsys), "manifest.csv": b"name,reason\r\n"}
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    assert cli.main(["colorize-ray", str(src), "-o", str(out), "-q"]) == 0
    again = capsys.readouterr().out
    assert f"skipped 6 photo(s) whose output is already in {out}" in again
    assert "colorized 0 of 0 photo(s)" in again
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "manifest.csv"} == \
        {k: v for k, v in stamps.items() if k != "manifest.csv"}  # nothing rewritten, nothing new

    kept = (out / "photo_2.png").read_bytes()
    (out / "photo_2.png").unlink()  # as if the first run had stopped before this one
    assert cli.main(["colorize-ray", str(src), "-o", str(out), "-q"]) == 0
    third = capsys.readouterr().out
    assert "skipped 5 photo(s)" in third and "colorized 1 of 1 photo(s)" in third
    assert (out / "photo_2.png").read_bytes() == kept
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS + ["manifest.csv"])
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name not in ("photo_2.png", "manifest.csv")} == \
        {k: v for k, v in stamps.items() if k not in ("photo_2.png", "manifest.csv")}


def test_ray_damaged_photos_go_to_the_manifest(ray_session, tmp_path, capsys):
    src = make_photos(tmp_path / "in", damaged=True)
    (src / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    rc = cli.main(["colorize-ray", str(src), "-o", str(out), "-q"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "colorized 6 of 9 photo(s)" in cap.out and "3 photo(s) not colorized" in cap.out
    rows = {Path(r["name"]).name: r["reason"] for r in manifest_rows(out)}
    assert sorted(rows) == ["cut.jpg", "empty.jpg", "notes.png"]
    assert "damaged or truncated" in rows["cut.jpg"]
    assert "empty" in rows["empty.jpg"]
    assert "not an image" in rows["notes.png"]
    assert f"not colorized {src / 'notes.png'}: " in cap.err
    assert sorted(files_of(out)) == sorted(OUTPUTS + ["manifest.csv"])
    # a rerun: the written ones skipped, the damaged ones tried again and listed again
    assert cli.main(["colorize-ray", str(src), "-o", str(out), "-q"]) == 1
    cap = capsys.readouterr()
    assert "skipped 6 photo(s)" in cap.out and "colorized 0 of 3 photo(s)" in cap.out
    assert sorted(Path(r["name"]).name for r in manifest_rows(out)) == ["cut.jpg", "empty.jpg", "notes.png"]


def test_ray_jpeg_output(ray_session, tmp_path, capsys):
    src = make_photos(tmp_path / "in")
    out = tmp_path / "out"
    assert cli.main(["colorize-ray", str(src / "sub"), str(src / "other"), "-o", str(out), "-q",
                     "--format", "jpeg", "--quality", "80"]) == 0
    capsys.readouterr()
    got = files_of(out)
    assert sorted(got) == ["c.jpg", "manifest.csv", "photo.jpg", "photo_2.jpg"]  # other/ came second
    plain = tmp_path / "plain"
    cli.main(["colorize", str(src / "sub"), str(src / "other"), "-o", str(plain), "-q"])
    capsys.readouterr()
    for name in ("c", "photo", "photo_2"):
        import io
        buf = io.BytesIO()
        Image.open(plain / f"{name}.png").save(buf, format="JPEG", quality=80)
        assert got[f"{name}.jpg"] == buf.getvalue(), name  # the same pixels, encoded at quality 80


def test_ray_bad_options_are_one_line(ray_session, tmp_path, capsys):
    src = make_photos(tmp_path / "in")
    out = tmp_path / "out"
    assert cli.main(["colorize-ray", str(src), "-o", str(out), "--quality", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: JPEG quality must be from 1 to 95, not 0"
    assert cli.main(["colorize-ray", str(src), "-o", str(out), "--model", "nope"]) == 2
    assert "error: unknown model 'nope'" in capsys.readouterr().err
    assert cli.main(["colorize-ray", str(tmp_path / "nothing"), "-o", str(out)]) == 2
    assert "no image files to colorize" in capsys.readouterr().err
    assert not out.exists()
