"""Whole-call pipelines built from the media outputs: process-all and mix-audio (`process`),
the QA report (`qa`). Imports `rawcore.media` and below."""
