"""Print a rawcore manifest.json as a short table (used by `make demo`)."""

import json
import sys

doc = json.load(open(sys.argv[1]))
for o in doc["outputs"]:
    extra = f"{o['frames']} frames {o['width']}x{o['height']}" if o["kind"] == "video" else (
        f"dtx {o['dtx_filled_ms']} ms, loss {o['loss_filled_ms']} ms, pause {o['pause_filled_ms']} ms"
    )
    print(f"{o['kind']:5} {o['codec']:5} {o['duration_ms']:>6} ms  {extra:34}  {o['path']}")
