"""Print a rawcore manifest.json as a short table (used by `make demo`)."""

import json
import sys

with open(sys.argv[1]) as f:
    doc = json.load(f)
for o in doc["outputs"]:
    if o["kind"] in ("video", "av") and "frames" in o:
        extra = f"{o['frames']} frames {o['width']}x{o['height']}"
    elif o["kind"] == "mix":
        extra = f"{o['sample_rate']} Hz mix of {len(o['track_ids'])} tracks"
    else:
        extra = (
            f"dtx {o['dtx_filled_ms']} ms, loss {o['loss_filled_ms']} ms, "
            f"pause {o['pause_filled_ms']} ms"
        )
    print(f"{o['kind']:5} {o['codec']:9} {o['duration_ms']:>6} ms  {extra:34}  {o['path']}")
