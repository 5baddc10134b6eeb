"""Editing an existing video (docs/architecture.md): lip-sync crops, the latents held outside the
mask, and compositing the regenerated faces back into the source frames."""
