"""Media outputs: the shared output engine (`outputs`, `files`, `manifest`), and the writers on
top of it (`audio`, `video`, `mux`, `track`, `mix`). Imports `rawcore.recording` and below."""
