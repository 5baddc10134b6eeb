"""Videos of any length (docs/architecture.md): the window planner, the motion-frame and latent-fusion
loops, latents held through sampling, following a reference video, and colour matching."""
