"""Start the real web app (`python app.py`) in a subprocess on a free port of 127.0.0.1, and
make the awkward files the app must cope with. Shared by the app's API and browser tests."""
from __future__ import annotations

import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import REPO

ARTIFACTS = REPO / "tests" / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py` with its own weights folder, cache folder and log file."""

    def __init__(self, weights_dir: Path, workdir: Path, max_upload_mb: int = 2, extra_env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = workdir / "app.log"
        env = dict(os.environ)
        env.update({
            "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
            "COLORIZER_WEIGHTS_DIR": str(weights_dir), "COLORIZER_APP_CACHE": str(workdir / "cache"),
            "COLORIZER_MAX_UPLOAD_MB": str(max_upload_mb), "GRADIO_TEMP_DIR": str(workdir / "gradio"),
            "PYTHONUNBUFFERED": "1",
            # the Turing test's tab (issue #4), when installed: its own database, no demo survey
            "TURING_DB_URL": f"sqlite:///{workdir / 'turing.db'}", "TURING_DEMO": "0",
        })
        env.update(extra_env or {})
        self._log = open(self.log_path, "w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=str(REPO), env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.startup_s = self._wait()

    def _wait(self, timeout: float = 90.0) -> float:
        while time.perf_counter() - self.started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(f"app.py did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def weights_with(tiny_checkpoint: Path, dest: Path, extra_names=("tiny2.pt",)) -> Path:
    """A weights folder with the tiny default model, plus copies under other names (a second
    model to compare with)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tiny_checkpoint, dest / tiny_checkpoint.name)
    for n in extra_names:
        shutil.copyfile(tiny_checkpoint, dest / n)
    return dest


# --- photos and awkward files --------------------------------------------------------------------

def photo(h=96, w=128) -> np.ndarray:
    """A natural color photo (scikit-image's astronaut) at h x w."""
    from skimage import data
    return np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.BILINEAR))


def gray_photo(h=90, w=120) -> np.ndarray:
    from skimage import data
    return np.asarray(Image.fromarray(data.camera()).resize((w, h), Image.BILINEAR))


def save(path: Path, im: Image.Image, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


def top_dark_bottom_bright(h=60, w=40) -> np.ndarray:
    """A gray image whose upper half is dark and lower half bright (tells upright from rotated)."""
    a = np.full((h, w), 40, np.uint8)
    a[h // 2:] = 220
    return a


def exif_rotated_jpeg(path: Path) -> Path:
    """A JPEG whose pixels are stored turned 90 degrees, with EXIF orientation 6 saying so: the
    upright photo is 40 wide x 60 high, dark on top."""
    upright = Image.fromarray(top_dark_bottom_bright())
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(path, stored, format="JPEG", quality=95, exif=exif.tobytes())


def png_claiming_size(width: int, height: int) -> bytes:
    """A small valid PNG whose header (with a correct CRC) claims width x height."""
    buf = io.BytesIO()
    Image.new("L", (4, 4), 128).save(buf, format="PNG")
    b = bytearray(buf.getvalue())
    # IHDR data starts at byte 16 (8 signature + 4 length + 4 type)
    b[16:24] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF
    b[29:33] = struct.pack(">I", crc)
    return bytes(b)


def animated_gif(path: Path) -> Path:
    """Two frames: the first dark, the second bright."""
    frames = [Image.new("L", (48, 32), 30), Image.new("L", (48, 32), 230)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def palette_png_with_transparency(path: Path) -> Path:
    im = Image.fromarray(photo(64, 64)).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    im.info["transparency"] = 0
    im.save(path, format="PNG", transparency=0)
    return path


def noise_png(path: Path, megabytes: float) -> Path:
    """An incompressible RGB PNG of about that many megabytes."""
    side = int((megabytes * 1e6 / 3) ** 0.5) + 1
    arr = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return save(path, Image.fromarray(arr), format="PNG", compress_level=0)


def lightness(path) -> np.ndarray:
    from colorizer import lab
    return lab.rgb_to_lightness(np.asarray(Image.open(path).convert("RGB")))


def chroma(path) -> np.ndarray:
    return chroma_of(np.asarray(Image.open(path).convert("RGB")))


def chroma_of(rgb_arr: np.ndarray) -> np.ndarray:
    from colorizer import lab
    L = lab.rgb_to_lab(np.asarray(rgb_arr))
    return np.hypot(L[..., 1], L[..., 2])


def zip_with_lying_size(path, name: str, payload: bytes, declared: int) -> str:
    """A deflated zip member whose local and central headers declare `declared` bytes."""
    import zipfile
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, payload)
    data = bytearray(Path(path).read_bytes())
    loc = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, loc + 22, declared)  # uncompressed size in the local header
    cen = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, cen + 24, declared)  # and in the central directory
    Path(path).write_bytes(bytes(data))
    return str(path)
