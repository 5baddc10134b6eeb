"""The application layer (docs/architecture.md): a request (CLI flags, a batch manifest line or Python
arguments) becomes a job (jobs.py), then one `ResolvedJob` (resolve.py) checked before any weights
load, and runs through the task registry (registry.py) on the shared runner skeleton (render.py)."""
