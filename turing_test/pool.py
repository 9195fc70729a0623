"""Stimuli: real photos and their colorized versions, made alike in everything but color.

For each source photo (EXIF rotation applied, center-cropped to a square, resized to size x size
with Lanczos) the pool stores:
- the real version: those pixels;
- one colorized version per model: the model's colorization of exactly those pixels (the model
  sees only their lightness, so real and colorized share L);
- optionally an attention check: the real photo with its hue turned half-way round (a and b
  negated in Lab, saturation raised): obviously wrong colors, for which the right answer is
  "fake".
All versions go through the same encoder (turing_test.stimulus_encoding: fixed JPEG round trip,
uncompressed PNG, no metadata). Participants are served a per-trial copy under a name derived
from the trial's token, which exists only while that trial is the participant's current one
(`StimulusFiles.show` / `hide`): nothing a participant can see tells real from colorized or
names the model, and no image can be fetched before or after its trial.

May touch: the store (reads, and one write transaction per build: Store.save_pool), the photos it
is given (read), a temporary folder for a zip upload, and the stimulus cache folder
(StimulusFiles).
"""
from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .stimulus_encoding import attention_version, encode, load_source, pair_metrics, stored_png, to_rgb8
from .store import NewStimulus, Store
from .survey import SurveyError

MIN_SIZE, MAX_SIZE = 64, 1024
PAIR_GAP = 16  # px of white between the two photos of a pair
ZIP_MAX_FILES = 5000
ZIP_MAX_BYTES = 2 * 1024 ** 3
DEMO_SURVEY = "demo"
DEMO_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
               "hubble_deep_field.jpg")


@dataclass
class PoolReport:
    survey: str
    sources: list[str] = field(default_factory=list)
    practice_sources: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    counts: dict = field(default_factory=dict)  # kind -> number of stimuli

    def text(self) -> str:
        lines = [f"survey {self.survey!r}: {len(self.sources)} source photos "
                 f"({len(self.practice_sources)} kept for practice); stimuli: "
                 + ", ".join(f"{n} {k}" for k, n in self.counts.items())]
        for name, why in self.skipped:
            lines.append(f"  skipped {name}: {why}")
        return "\n".join(lines)


def list_photos(folder) -> list[Path]:
    """The photo files of a folder (recursively, hidden files apart), sorted; a file: itself."""
    from colorizer.data import IMAGE_EXTENSIONS  # (imported here: not on `import turing_test.pool`)
    folder = Path(folder)
    if not folder.exists():
        raise SurveyError(f"the photo folder {folder} does not exist")
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def _check_size(size) -> int:
    try:
        size = int(size)
    except (TypeError, ValueError):
        raise SurveyError("the stimulus size must be a whole number of pixels") from None
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise SurveyError(f"the stimulus size must be from {MIN_SIZE} to {MAX_SIZE} px")
    return size


def _check_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise SurveyError("a survey name of 1 to 100 characters is needed")
    return name


def build_pool(store: Store, photos, models, *, survey: str, size: int = 256,
               practice: int = 2, attention: int | None = None, repeats: int | None = None,
               paradigm: str | None = None, activate: bool = True,
               is_demo: bool = False, settings: dict | None = None, seed: int | None = None,
               progress=None, only_if_no_survey: bool = False) -> PoolReport:
    """Build (or extend) a survey's pool from photos (a folder, or a list of files).

    models: model names (see ``python -m colorizer models``), or loaded Colorizer objects.
    practice: how many source photos to keep for the practice trials (at most a fifth of them).
    attention: how many source photos also get an attention-check version (default: a tenth,
    at least 2 when there are 10 photos or more, else 1).
    repeats: how many source photos get a twin of each of their versions (the same image under
    another id: a participant who saw one may see it again as a consistency check; default as
    many as attention).
    Everything is computed first and written in one transaction: a failure writes nothing.
    paradigm: "single" (default) or "pair" for a new survey (Zhang et al.'s two-photo protocol:
    each trial is a colorization beside its real photo); an existing survey keeps its own.
    progress: optional callable(fraction, text).
    """
    name = _check_name(survey)
    size = _check_size(size)
    if paradigm is not None:
        from .survey import check_paradigm
        settings = dict(settings or {}, paradigm=check_paradigm(paradigm))
    files = list_photos(photos) if isinstance(photos, (str, os.PathLike)) else [Path(p) for p in photos]
    loaded = _load_models(_model_names(models))
    _check_survey(store, name, size, paradigm, settings)
    report = PoolReport(survey=name)
    reals = _read_sources(store, files, name, size, report, progress)
    if not reals:
        raise SurveyError("no usable color photo was found" + (
            ": " + "; ".join(f"{n}: {w}" for n, w in report.skipped[:5]) if report.skipped else
            f" in {photos}"))
    roles = _choose_roles(len(reals), practice, attention, repeats, seed)
    stimuli = _make_stimuli(reals, loaded, size, roles, report, progress)
    if progress:
        progress(0.97, "saving")
    saved = store.save_pool(name, stimuli, image_size=size, activate=activate, is_demo=is_demo,
                            settings=settings, only_if_no_survey=only_if_no_survey)
    if saved is None:
        return None
    _count(report, stimuli)
    return report


def _model_names(models) -> list:
    """models as given (a comma-separated string, a list of names or Colorizer objects, "all")
    -> the list of names / objects to load; refuses an empty list."""
    import colorizer
    if isinstance(models, str):
        models = [m for m in models.split(",")]
    models = [m.strip() if isinstance(m, str) else m for m in models]
    models = [m for m in models if m != ""]
    if models == ["all"]:  # every model whose weights are present: one survey ranks them all
        models = [r["name"] for r in colorizer.list_models()]
        if not models:
            raise SurveyError("`all` models: no model has its weights present (python -m colorizer models)")
    if not models:
        raise SurveyError("name at least one model (python -m colorizer models lists them)")
    return models


def _load_models(models: list) -> list[tuple[str, object]]:
    """(model name, Colorizer) for each model, each named once."""
    import colorizer
    loaded = []
    for m in models:
        if isinstance(m, str):
            try:
                loaded.append((colorizer.resolve(m).name, colorizer.load_colorizer(m)))
            except colorizer.ColorizerError as exc:
                raise SurveyError(str(exc)) from exc
            except Exception as exc:  # WeightsError and friends
                raise SurveyError(f"model {m!r} cannot be loaded: {exc}") from exc
        else:
            loaded.append((m.name, m))
    if len({n for n, _ in loaded}) != len(loaded):
        raise SurveyError("each model may be named only once")
    return loaded


def _check_survey(store: Store, name: str, size: int, paradigm, settings) -> None:
    """An existing survey of that name must have this paradigm (when one is asked for) and size."""
    info = store.get_survey(name)
    if info is not None and paradigm is not None and (info.get("paradigm") or "single") != settings["paradigm"]:
        raise SurveyError(f"survey {name!r} is a {info.get('paradigm') or 'single'}-photo survey; "
                          "choose another survey name for the other paradigm")
    if info is not None and info["image_size"] != size:
        raise SurveyError(f"survey {name!r} uses {info['image_size']} px stimuli; build with "
                          f"--size {info['image_size']} or choose another survey name")


def _read_sources(store: Store, files: list[Path], name: str, size: int, report: PoolReport,
                  progress) -> list[tuple[str, np.ndarray]]:
    """(source name, real stimulus pixels) of each usable photo not yet in the survey; the others
    go to report.skipped with the reason. Two photos of one name get "#2", "#3"... after it."""
    import colorizer
    existing = store.sources_of(name)
    reals: list[tuple[str, np.ndarray]] = []
    seen_names: set[str] = set()
    for i, f in enumerate(files):
        src = f.name
        k = 2
        while src in seen_names:  # two photos of the same name in different folders
            src = f"{f.name}#{k}"
            k += 1
        if progress:
            progress(0.3 * i / max(1, len(files)), f"reading {f.name}")
        if src in existing:
            report.skipped.append((src, f"already in survey {name!r}"))
            continue
        try:
            reals.append((src, load_source(f, size)))
            seen_names.add(src)
        except (colorizer.ImageError, SurveyError) as exc:
            report.skipped.append((src, str(exc)))
    return reals


@dataclass
class _Roles:
    """Which source photos (indices into the sources read) are practice, attention or repeated."""
    practice: set[int]
    attention: set[int]
    repeat: set[int]


def _choose_roles(n: int, practice, attention, repeats, seed) -> _Roles:
    """The practice photos, then the attention checks and repeats among the others, at random
    (seeded); defaults as documented in build_pool."""
    rng = random.Random(seed)
    n_practice = min(max(0, int(practice)), n // 5)
    order = list(range(n))
    rng.shuffle(order)
    practice_idx = set(order[:n_practice])
    main_idx = [i for i in order if i not in practice_idx]
    if attention is None:
        attention = max(2 if len(main_idx) >= 10 else 1, len(main_idx) // 10)
    attention_idx = set(main_idx[:max(0, min(int(attention), len(main_idx)))])
    if repeats is None:
        repeats = max(2 if len(main_idx) >= 10 else 1, len(main_idx) // 10)
    repeat_idx = set(main_idx[::-1][:max(0, min(int(repeats), len(main_idx)))])
    return _Roles(practice_idx, attention_idx, repeat_idx)


def _make_stimuli(reals, loaded, size: int, roles: _Roles, report: PoolReport,
                  progress) -> list[NewStimulus]:
    """Per source photo: its real version, one colorized version per model, their twins (a
    repeated photo) and its attention check; the sources go to the report."""
    stimuli: list[NewStimulus] = []
    total = len(reals) * len(loaded)
    done = 0
    for i, (src, rgb) in enumerate(reals):
        is_practice = i in roles.practice
        first = len(stimuli)
        stimuli.append(NewStimulus(source=src, kind="real", image=encode(rgb), width=size,
                                   height=size, practice=is_practice))
        for model_name, c in loaded:
            if progress:
                progress(0.3 + 0.65 * done / max(1, total), f"colorizing {src} with {model_name}")
            stimuli.append(_colorized(src, rgb, model_name, c, stimuli[first], is_practice))
            done += 1
        if i in roles.repeat:
            stimuli += [NewStimulus(source=v.source, kind=v.kind, model=v.model, image=v.image,
                                    width=v.width, height=v.height, twin_of=v.id)
                        for v in stimuli[first:]]
        if i in roles.attention:
            stimuli.append(NewStimulus(source=src, kind="attention",
                                       image=encode(attention_version(rgb)), width=size,
                                       height=size))
        if is_practice:
            report.practice_sources.append(src)
        report.sources.append(src)
    return stimuli


def _colorized(src: str, rgb: np.ndarray, model_name: str, c, real: NewStimulus,
               is_practice: bool) -> NewStimulus:
    """One model's colorization of a source photo, with its metrics against the real version."""
    out = c.colorize(rgb)
    if out.shape[:2] != rgb.shape[:2]:
        raise SurveyError(f"model {model_name!r} changed the image size")
    data = encode(to_rgb8(out))
    return NewStimulus(source=src, kind="generated", model=model_name, image=data,
                       width=real.width, height=real.height, practice=is_practice,
                       **pair_metrics(data, real.image))


def _count(report: PoolReport, stimuli: list[NewStimulus]) -> None:
    """The report's counts: stimuli of each kind (repeats apart), and the repeats."""
    for k in ("real", "generated", "attention"):
        report.counts[k] = sum(s.kind == k and not s.twin_of for s in stimuli)
    report.counts["repeats"] = sum(bool(s.twin_of) for s in stimuli)


def extract_zip(zip_path, dest) -> Path:
    """Unpack the image files of an uploaded zip safely (no paths outside dest, bounded size)."""
    from colorizer.data import IMAGE_EXTENSIONS
    dest = Path(dest)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SurveyError(f"the upload is not a readable zip file ({exc})") from exc
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()
                   and Path(m.filename).suffix.lower() in IMAGE_EXTENSIONS
                   and not Path(m.filename).name.startswith((".", "__MACOSX"))
                   and "__MACOSX" not in m.filename]
        if not members:
            raise SurveyError("the zip holds no photos (JPEG, PNG, TIFF, WebP, BMP)")
        if len(members) > ZIP_MAX_FILES:
            raise SurveyError(f"the zip holds {len(members)} photos; at most {ZIP_MAX_FILES}")
        if sum(m.file_size for m in members) > ZIP_MAX_BYTES:
            raise SurveyError("the zip's photos take more than 2 GB unpacked")
        for k, m in enumerate(members):
            target = dest / f"{k:05d}" / Path(m.filename).name
            target.parent.mkdir()
            with zf.open(m) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    return dest


def build_pool_from_zip(store: Store, zip_path, models, **kwargs) -> PoolReport:
    with tempfile.TemporaryDirectory(prefix="turing_zip_") as tmp:
        extract_zip(zip_path, tmp)
        return build_pool(store, list_photos(tmp), models, **kwargs)


# --- the demo survey ---------------------------------------------------------------------------

_demo_lock = threading.Lock()


def demo_photos() -> list[Path]:
    """scikit-image's sample color photos (shipped with the package)."""
    import skimage
    d = Path(skimage.__file__).parent / "data"
    return [d / n for n in DEMO_PHOTOS if (d / n).is_file()]


def ensure_demo_survey(store: Store, model: str | None = None) -> str:
    """On an empty database, build a small demo survey (scikit-image's photos, the default model,
    or the first model whose weights are here). Returns a line saying what happened."""
    with _demo_lock:
        if store.has_surveys():
            return "a survey exists already"
        import colorizer
        if model is None:
            names = [m["name"] for m in colorizer.list_models()]
            default = colorizer.DEFAULT_MODEL
            if default in names:
                model = default
            elif names:
                model = names[0]
            else:
                return ("no demo survey: no colorization model has its weights here "
                        "(python -m colorizer models)")
        photos = demo_photos()
        if not photos:
            return "no demo survey: scikit-image's sample photos are not installed"
        rep = build_pool(store, photos, [model], survey=DEMO_SURVEY, size=256, practice=1,
                         attention=2, activate=True, is_demo=True, seed=0,
                         settings=dict(max_trials=10, n_practice=1, n_attention=1),
                         only_if_no_survey=True)
        return rep.text() if rep else "a survey exists already"


# --- files for serving -------------------------------------------------------------------------

class StimulusFiles:
    """Stimulus images as files for serving.

    `store/` keeps one file per stimulus (from the database, written on first use); it is not
    served. `shown/` is the folder Gradio serves: `show(stimulus_id, token)` puts a hard link (or
    a copy) of the stimulus there under a name derived from the trial's token with a key of this
    process, and `hide(token)` removes it once the trial is answered, so a stimulus's URL answers
    only while its trial is current (404 before and after). `shown/` is emptied at start-up.
    """

    def __init__(self, store: Store, folder=None):
        self.store = store
        from .settings import settings
        self.root = Path(folder or settings().stimulus_cache)
        self.stored = self.root / "store"
        self.folder = self.root / "shown"  # the only folder served
        self.stored.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._key = os.urandom(16)
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def _stored_path(self, stimulus_id: str) -> Path:
        p = self.stored / f"{stimulus_id}.img"
        if stimulus_id in self._known:
            return p
        if not p.exists():
            data = self.store.stimulus_image(stimulus_id)
            tmp = self.stored / f".{stimulus_id}.{threading.get_ident()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, p)
        with self._lock:
            self._known.add(stimulus_id)
        return p

    def _shown_path(self, token: str) -> Path:
        import hashlib
        import hmac
        name = hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()[:32]
        return self.folder / f"{name}.png"

    def show(self, stimulus_id: str, token: str) -> str:
        """The served file of this trial (made if it is not there yet)."""
        dest = self._shown_path(token)
        if not dest.exists():
            src = self._stored_path(stimulus_id)
            tmp = dest.with_name(f".{dest.stem}.{threading.get_ident()}.tmp")
            try:
                os.link(src, tmp)
            except OSError:  # another file system, or no hard links: a copy
                shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        return str(dest)

    def show_pair(self, stimulus_id: str, real_id: str, token: str, real_on_left: bool) -> str:
        """The served file of a pair trial: the real photo and the other stimulus side by side
        (the real one on the left if real_on_left), PAIR_GAP px of white between them, in one
        image through the same encoder, so that the file is the same length for every pair."""
        dest = self._shown_path(token)
        if not dest.exists():
            real, other = (self._pixels(real_id), self._pixels(stimulus_id))
            if real.shape != other.shape:
                raise SurveyError("the two photos of a pair differ in size: rebuild the pool")
            gap = np.full((real.shape[0], PAIR_GAP, 3), 255, dtype=np.uint8)
            both = np.concatenate([real, gap, other] if real_on_left else [other, gap, real], axis=1)
            tmp = dest.with_name(f".{dest.stem}.{threading.get_ident()}.tmp")
            tmp.write_bytes(stored_png(both))
            os.replace(tmp, dest)
        return str(dest)

    def _pixels(self, stimulus_id: str) -> np.ndarray:
        with Image.open(self._stored_path(stimulus_id)) as im:
            return np.asarray(im.convert("RGB"))

    def hide(self, token: str | None) -> None:
        """The trial is over: its file goes (fetching its URL now gives 404)."""
        if token:
            try:
                self._shown_path(token).unlink()
            except FileNotFoundError:
                pass

    def path(self, stimulus_id: str) -> str:
        """The stored (not served) file of a stimulus, for the admin's views and tests."""
        return str(self._stored_path(stimulus_id))
