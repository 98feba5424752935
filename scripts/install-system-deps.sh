#!/usr/bin/env bash
# Installs the Debian packages rawcore's tests need, only when something is missing.
# GStreamer makes the test captures with its own RTP payloaders (an independent reference).
set -euo pipefail

need=()
command -v gst-launch-1.0 >/dev/null 2>&1 || need+=(gstreamer1.0-tools)
for el in rtpopuspay:gstreamer1.0-plugins-good vp8enc:gstreamer1.0-plugins-good \
          opusenc:gstreamer1.0-plugins-base x264enc:gstreamer1.0-plugins-ugly \
          rtpstreampay:gstreamer1.0-plugins-good av1enc:gstreamer1.0-plugins-bad \
          pcapparse:gstreamer1.0-plugins-bad avdec_h264:gstreamer1.0-libav; do
  if ! gst-inspect-1.0 "${el%%:*}" >/dev/null 2>&1; then need+=("${el##*:}"); fi
done
# janus-pp-rec (janus-tools) reads back the .mjr recordings the capture-input tests write.
command -v janus-pp-rec >/dev/null 2>&1 || need+=(janus-tools)
# Headless Chromium and its WebDriver play the MP4s `rawcore convert` writes (a real browser).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# `--bench` adds the peers measured side by side in BENCHMARKS.md, GNU time for peak RSS and
# hyperfine for the start-up timings.
if [ "${1:-}" = "--bench" ]; then
  command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
  [ -x /usr/bin/time ] || need+=(time)
  command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "installing system packages: ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "not root: install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
