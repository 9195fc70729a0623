"""Screenshot the Colorize tab after colorizing an example, in Debian's headless Chromium.

    python scripts/screenshot_app.py --out docs/screenshots/colorize_tab.png
    python scripts/screenshot_app.py --checkpoint runs/lite0_cls.pt --example "chelsea gray"
    python scripts/screenshot_app.py --example "cameraman gray" --hints 0.3,0.8 0.5,0.2 --variations \
        --out docs/screenshots/colorize_hints.png

Starts the real server (`python app.py`) on a free port, clicks an example, presses Colorize,
waits for the result (and the metrics, for a color example) and saves a full-page PNG. With
--hints, it then clicks on the photo in the Color hints panel at those points (fractions of
width and height), one hint each; with --variations it also shows the variations gallery.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots" / "colorize_tab.png")
    ap.add_argument("--weights-dir", type=Path, default=REPO / "weights")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="serve this checkpoint as the default model")
    ap.add_argument("--example", default="chelsea gray", help="label of the example to click")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--hints", nargs="*", default=[], metavar="FX,FY",
                    help="click on the photo in the hint panel at these fractions of its size")
    ap.add_argument("--variations", action="store_true", help="also show the variations gallery")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright
    import apphelpers as H
    from colorizer.registry import DEFAULT_MODEL, REGISTRY

    work = Path(tempfile.mkdtemp(prefix="screenshot_app_"))
    try:
        wdir = args.weights_dir
        if args.checkpoint:
            wdir = work / "weights"
            wdir.mkdir()
            shutil.copyfile(args.checkpoint, wdir / REGISTRY[DEFAULT_MODEL].weights)
        srv = H.AppServer(wdir, work, max_upload_mb=100)
        try:
            with sync_playwright() as p:
                ctx = p.chromium.launch_persistent_context(
                    str(work / "profile"), executable_path=args.chromium, headless=True, args=ARGS,
                    viewport={"width": 1380, "height": 1000})
                page = ctx.new_page()
                page.set_default_timeout(120_000)
                page.goto(srv.url, wait_until="domcontentloaded")
                page.locator("#colorize-button").wait_for()
                page.get_by_text(args.example, exact=True).first.click()
                page.locator("#photo-input img").first.wait_for()
                page.locator("#colorize-button").click()
                page.locator("#result-message").get_by_text("Colorized").first.wait_for()
                if "already a" in page.locator("#result-message").inner_text():
                    page.locator("#heatmap img").first.wait_for()
                if args.hints:
                    page.get_by_text("Color hints: click on the photo").click()
                    img = page.locator("#hint-image img").first
                    img.wait_for()
                    for i, spec in enumerate(args.hints, 1):
                        fx, fy = (float(v) for v in spec.split(","))
                        box = img.bounding_box()
                        nw, nh = img.evaluate("e => [e.naturalWidth, e.naturalHeight]")
                        r = min(box["width"] / nw, box["height"] / nh, 1.0)
                        ox, oy = (box["width"] - nw * r) / 2, (box["height"] - nh * r) / 2
                        img.click(position={"x": ox + fx * nw * r, "y": oy + fy * nh * r})
                        page.locator("#hint-list").get_by_text(f"{i} hint").first.wait_for()
                        page.locator("#hint-suggestions img").nth(5).wait_for()
                        page.wait_for_timeout(1500)
                if args.variations:
                    page.get_by_text("Variations: several plausible").click()
                    page.locator("#variations-button").click()
                    page.locator("#variations-gallery img").nth(3).wait_for()
                page.wait_for_timeout(1500)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                ctx.close()
        finally:
            srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
