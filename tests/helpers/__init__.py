"""Test-data generators for rawcore.

Everything here exists only to *make* inputs for the test suite and the bundled sample:
real RTP captured from GStreamer's payloaders (`gst`), deterministic network impairments
(`impair`), an independent rtpdump writer plus RTP/RTCP byte helpers (`rtpdump`) and whole raw
call recordings with their SDP and timing metadata (`recording`). None of it is imported by
rawcore itself, so a bug in rawcore cannot hide behind a matching bug here.
"""
