"""The Colorizer web app (Gradio). `python app.py` serves it on http://127.0.0.1:7860.

Host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (a Hugging Face Space sets
them). Other settings: COLORIZER_WEIGHTS_DIR (where model weights are), COLORIZER_MAX_UPLOAD_MB
(upload size limit, default 100), COLORIZER_MAX_MEGAPIXELS (pixel limit, default 40),
COLORIZER_APP_CACHE (examples and results; default a folder in the system temp directory).
"""
from __future__ import annotations

import os

# No telemetry, no update checks: the app must start on a machine without internet.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import logging  # noqa: E402
import time  # noqa: E402

import gradio as gr  # noqa: E402

from colorizer import ui  # noqa: E402

log = logging.getLogger("colorizer.app")

INTRO = """# Colorizer
Bring black-and-white photos back to color. Upload a photo, choose a model, press **Colorize**.
The network predicts the colors; every detail of your photo's lightness is kept at full resolution.
"""


def _turing_test_tabs() -> None:
    # ---- Turing test (issue #4) -------------------------------------------------------------
    # The package turing_test/ provides turing_test/ui.py with build_turing_tabs(); it is called
    # here, inside the app's gr.Tabs(), and creates its own gr.Tab(...) blocks. Until that package
    # is installed, one tab says so.
    note = "The colorization Turing test is not installed yet."
    try:
        from turing_test import ui as turing_ui
    except ModuleNotFoundError as exc:
        turing_ui = None
        if exc.name not in ("turing_test", "turing_test.ui"):  # it is there, but lacks something
            log.error("the Turing test cannot be loaded: %s", exc)
            note = f"The colorization Turing test cannot be loaded here: {exc}."
    if turing_ui is not None and hasattr(turing_ui, "build_turing_tabs"):
        turing_ui.build_turing_tabs()
        return
    with gr.Tab("Turing test", id="turing"):
        gr.Markdown(note)
    # ---- end of the Turing test's place --------------------------------------------------------


def build_demo() -> gr.Blocks:
    """The whole app: the Colorize tab (colorizer/ui.py) and the Turing test's place."""
    with gr.Blocks(title="Colorizer", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("Colorize", id="colorize"):
                dropdowns = ui.build_colorize_tab()
            _turing_test_tabs()
        gr.Markdown(f"<small>{ui.describe_limits()} Models are loaded once per process and shared; "
                    "your results stay in your own session.</small>")
        ui.refresh_on_load(demo, dropdowns)
    return demo


def launch_kwargs() -> dict:
    """Arguments of demo.launch() for `python app.py` (which the tests and the benchmark run)."""
    return dict(max_file_size=ui.upload_limit(), theme=ui.theme(), css=ui.CSS, ssr_mode=False,
                show_error=False, footer_links=["api"], allowed_paths=[str(ui.cache_root())])


demo = build_demo()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t = time.perf_counter()
    ui.preload()
    log.info("ready to serve after %.1f s of model loading", time.perf_counter() - t)
    try:  # everything made so far lives as long as the server: out of the collector's rescans
        from turing_test.ui import settle_garbage_collector
        settle_garbage_collector()
    except ModuleNotFoundError:
        pass
    demo.queue(default_concurrency_limit=1).launch(**launch_kwargs())
