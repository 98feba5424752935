"""The recording: frozen model types (`model`), opening and analysing a recording (`build`),
timing metadata (`metadata`), per-packet columns (`columns`) and the call timeline
(`timeline`). Imports `rawcore.source` and below."""
