"""`rawcore batch`: one command over many recordings, on a local pool or a Ray cluster.

`plan` names the recordings (from a list, an S3 prefix or a folder), `deliver` says where each
one's outputs land and when they are complete (a manifest, written last), `task` runs one
recording's attempt and the retry loop, `pool` and `on_ray` run attempts in local processes or
as Ray tasks. The command itself is handed in by the caller (the CLI), so this room runs any
writing command with every option it has.
"""
