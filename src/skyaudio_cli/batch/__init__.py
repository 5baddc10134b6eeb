"""`skyaudio batch`: many jobs from a JSON-lines manifest in one process, each model loaded once.

manifest (lines -> jobs) -> plan (validate, resume, shard; no model loaded) -> runner / workers
(run, isolate failures) -> results (one JSON line per job, in manifest order).
Tasks plug in through `tasks.register`.
"""
