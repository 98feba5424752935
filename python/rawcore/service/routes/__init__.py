"""The service's routers, one per resource: recordings, tracks, jobs, signed files, the page."""
