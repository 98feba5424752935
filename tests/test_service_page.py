"""The Raw Tracks page in headless Chromium: rows match the API, a preview plays, "Convert to
MP4" shows progress then a link to a valid MP4, and a second click is immediate. The page's
screenshot is kept as a test artifact in `out/test-artifacts/raw_tracks.png`."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from service_helpers import ROOT, Service, create_org, start_service, upload, wait_job

ARTIFACTS = ROOT / "out" / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("chromium and chromium-driver are not installed")
    from selenium.webdriver.chrome.service import Service as DriverService

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1200,1400",
    ):
        opts.add_argument(arg)  # fmt: skip
    b = webdriver.Chrome(service=DriverService(driver), options=opts)
    try:
        yield b
    finally:
        b.quit()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str, str]]:
    svc = start_service(tmp_path_factory.mktemp("page"))
    try:
        key = create_org(svc.db, "acme")
        with svc.client(key) as c:
            r = upload(c).json()
            assert wait_job(c, r["job_id"])["state"] == "done"
        yield svc, key, r["recording_id"]
    finally:
        svc.stop()


def until(what: Callable[[], Any], timeout: float = 30.0, step: float = 0.1) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > end:
            return got
        time.sleep(step)


def hms(ms: int) -> str:
    s = round(ms / 1000)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def test_the_page_without_a_session_asks_for_the_key(ingested: tuple[Service, str, str],
                                                      browser: Any) -> None:  # fmt: skip
    svc, _, rid = ingested
    browser.delete_all_cookies()
    browser.get(f"{svc.url}/recordings/{rid}")
    assert browser.find_element("id", "key") is not None
    browser.get(f"{svc.url}/recordings/{rid}?key=rk_wrong")
    assert "not valid" in browser.page_source
    # Another organization's session finds no such recording.
    other = create_org(svc.db, "globex")
    browser.get(f"{svc.url}/recordings/{rid}?key={other}")
    assert "No such recording" in browser.find_element("id", "state").text


def test_raw_tracks_page(ingested: tuple[Service, str, str], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    svc, key, rid = ingested
    with svc.client(key) as c:
        api = c.get(f"/v1/recordings/{rid}/tracks").json()["tracks"]
    browser.delete_all_cookies()
    browser.get(f"{svc.url}/recordings/{rid}?key={key}")
    assert "key=" not in browser.current_url  # the key does not stay in the address bar
    rows = until(lambda: browser.find_elements(By.CSS_SELECTOR, "tr.track"))
    assert len(rows) == len(api)

    # The rows match the API: grouped by participant, duration h:mm:ss, a human size.
    shown = {r.get_attribute("data-track-id"): r for r in rows}
    for t in api:
        row = shown[t["track_id"]]
        assert row.find_element(By.CLASS_NAME, "duration").text == hms(t["duration_ms"])
        size = row.find_element(By.CLASS_NAME, "size").text
        assert size.endswith(" KB") and abs(float(size[:-3]) - t["bytes"] / 1000) < 1
        section = row.find_element(By.XPATH, "ancestor::section")
        assert section.get_attribute("data-participant-id") == t["participant_id"]
        assert section.find_element(By.CLASS_NAME, "name").text == t["participant_name"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # A preview plays in place: its currentTime advances.
    cam = next(t for t in api if t["codec"] == "vp9" and not t["stitched"])
    shown[cam["track_id"]].find_element(By.CLASS_NAME, "preview-button").click()
    played = until(lambda: browser.execute_script(
        "const v = document.querySelector('tr.preview-row video');"
        "return v && !v.error && v.currentTime > 1.0;"))  # fmt: skip
    assert played, browser.execute_script(
        "const v = document.querySelector('video'); return [v.currentTime, v.error && v.error.code]"
    )
    # The H.264 track's preview (an MP4 made on first request) plays too.
    h264 = next(t for t in api if t["codec"] == "h264" and not t["stitched"])
    shown[h264["track_id"]].find_element(By.CLASS_NAME, "preview-button").click()
    played = until(
        lambda: browser.execute_script(
            "const r = document.querySelector("
            f"'tr.preview-row[data-track-id=\"{h264['track_id']}\"]');"
            "const v = r && r.querySelector('video'); return v && !v.error && v.currentTime > 1.0;"
        )
    )
    assert played

    # Convert: progress while polling, then a link whose file is a valid MP4.
    cell = shown[cam["track_id"]].find_element(By.CLASS_NAME, "convert-cell")
    cell.find_element(By.CLASS_NAME, "convert").click()
    saw_progress = until(lambda: cell.find_elements(By.CLASS_NAME, "progress"), timeout=5,
                         step=0.02)  # fmt: skip
    assert saw_progress
    browser.save_screenshot(str(ARTIFACTS / "raw_tracks_converting.png"))
    link = until(lambda: cell.find_elements(By.CSS_SELECTOR, "a.mp4"), timeout=120)
    assert link
    data = httpx.get(link[0].get_attribute("href"), timeout=60).content
    with av.open(io.BytesIO(data)) as f:
        assert f.format.name.startswith("mov")
        assert sum(1 for _ in f.decode(video=0)) > 100

    # A second click (the page opened again) is immediate: the link, no progress.
    browser.refresh()
    row = until(lambda: browser.find_elements(
        By.CSS_SELECTOR, f"tr.track[data-track-id='{cam['track_id']}']"))[0]  # fmt: skip
    cell = row.find_element(By.CLASS_NAME, "convert-cell")
    t0 = time.monotonic()
    cell.find_element(By.CLASS_NAME, "convert").click()
    assert until(lambda: cell.find_elements(By.CSS_SELECTOR, "a.mp4"), timeout=2, step=0.02)
    assert time.monotonic() - t0 < 2.0
    row.find_element(By.CLASS_NAME, "preview-button").click()
    assert until(lambda: browser.execute_script(
        "const v = document.querySelector('tr.preview-row video');"
        "return v && v.currentTime > 2.0;"))  # fmt: skip
    browser.save_screenshot(str(ARTIFACTS / "raw_tracks.png"))


def test_empty_and_failed_states(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    svc = start_service(tmp_path)
    try:
        key = create_org(svc.db, "acme")
        # An archive that passes the upload checks but holds no recording: the job fails.
        import zipfile

        empty = tmp_path / "empty.zip"
        with zipfile.ZipFile(empty, "w") as z:
            z.writestr("readme.txt", "no captures here")
        with svc.client(key) as c:
            r = upload(c, empty).json()
            job = wait_job(c, r["job_id"])
        browser.delete_all_cookies()
        browser.get(f"{svc.url}/recordings/{r['recording_id']}?key={key}")
        state = until(lambda: browser.find_element(By.ID, "state").text.strip()
                      and "Loading" not in browser.find_element(By.ID, "state").text
                      and browser.find_element(By.ID, "state"))  # fmt: skip
        text = state.text
        if job["state"] == "failed":
            assert "failed" in text and "error" in state.get_attribute("class")
        else:
            assert "no tracks" in text
        browser.save_screenshot(str(ARTIFACTS / "raw_tracks_empty.png"))
    finally:
        svc.stop()
