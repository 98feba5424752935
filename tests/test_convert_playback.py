"""The MP4s play in a browser: headless Chromium's `<video>` plays each to its end."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import rawcore
from helpers.audio_truth import av_available
from helpers.gst import gst_available
from rawcore.media.convert import convert_track
from test_convert import av_call

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)


def _driver():  # type: ignore[no-untyped-def]
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("chromium and chromium-driver are not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-file-access-from-files",
    ):
        opts.add_argument(arg)  # fmt: skip
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.mark.parametrize(("codec", "mode"), [("vp9", "remux"), ("h264", "remux"),
                                             ("vp8", "editor")])  # fmt: skip
def test_chromium_plays_the_mp4_to_its_end(tmp_path: Path, codec: str, mode: str) -> None:
    av_call(tmp_path / "rec", codec)
    out = tmp_path / "out" / "a.mp4"
    with rawcore.open_recording(tmp_path / "rec") as rec:
        convert_track(rec, "cam", out, mode=mode)  # type: ignore[arg-type]
    page = tmp_path / "out" / "play.html"
    page.write_text('<video id="v" src="a.mp4" muted autoplay playsinline></video>')
    browser = _driver()
    try:
        browser.get(page.as_uri())
        deadline = time.monotonic() + 30
        state: dict[str, object] = {}
        while time.monotonic() < deadline:
            state = browser.execute_script(
                "const v = document.getElementById('v');"
                "return {ended: v.ended, error: v.error && v.error.code, t: v.currentTime,"
                " d: v.duration, w: v.videoWidth};"
            )
            if state["ended"] or state["error"]:
                break
            time.sleep(0.2)
    finally:
        browser.quit()
    assert state.get("error") is None and state.get("ended") is True, state
    assert state["w"] == 320 and float(state["d"]) > 5.0  # type: ignore[arg-type]
