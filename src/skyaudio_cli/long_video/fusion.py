"""Sliding-window denoising with latent fusion (SkyReels-Audio paper): unlimited length, any model.

The video's latents are covered by overlapping windows (`plan_latent_windows`). Every sampler step
runs the model on each window; where two windows overlap, their velocities are blended with linear
ramps (the earlier window fading out, the later fading in; the two weights sum to one), so the
overlap follows both neighbours and no seam forms. Nothing here knows the model: `velocity_fn`
gets a window's latents, the timestep and the window's index, and builds its own conditions.

Streaming order: step s of window k needs the latents of windows k-1, k, k+1 after step s-1, so
(k, s) runs in order of k + 2s (a wavefront). Only about 2 x steps windows are in flight at once,
finished latents are handed out from the front as soon as their last step is done, and memory
does not grow with the video's length.
"""

from collections.abc import Callable, Iterator, Sequence

import torch

from skyaudio_cli.long_video.windows import LatentWindow
from skyaudio_cli.sampling.flow_euler import euler_step

VelocityFn = Callable[[torch.Tensor, float, int], torch.Tensor]
TIME_AXIS = 2  # latents are [B, C, T, h, w]


def ramp_weights(windows: Sequence[LatentWindow]) -> list[torch.Tensor]:
    """Per-window blend weights over its latent frames; at every latent they sum to one."""
    weights = []
    for k, window in enumerate(windows):
        w = torch.ones(window.stop - window.start, dtype=torch.float32)
        if k > 0:
            overlap = windows[k - 1].stop - window.start
            w[:overlap] = torch.arange(1, overlap + 1) / (overlap + 1)
        if k + 1 < len(windows):
            overlap = window.stop - windows[k + 1].start
            w[len(w) - overlap :] = 1.0 - torch.arange(1, overlap + 1) / (overlap + 1)
        weights.append(w)
    return weights


def fused_sample(
    velocity_fn: VelocityFn,
    initial_latents: Callable[[int, int], torch.Tensor],
    windows: Sequence[LatentWindow],
    timesteps: torch.Tensor,
    *,
    on_step: Callable[[], None] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Denoise all windows; yield (first latent index, finished latents) in order, front first.

    `initial_latents(start, stop)` gives the noise for latent frames [start, stop), drawn when a
    window first needs them. `on_step` is called after every window step (windows x steps calls).
    """
    steps = len(timesteps) - 1
    weights = ramp_weights(windows)
    coverage = torch.zeros(windows[-1].stop, dtype=torch.int64)
    for window in windows:
        coverage[window.start : window.stop] += 1

    state = _Band()
    for wave in range(len(windows) + 2 * (steps - 1)):
        for step in range(steps):
            k = wave - 2 * step
            if not 0 <= k < len(windows):
                continue
            window = windows[k]
            if step == 0 and window.stop > state.stop:
                state.append(initial_latents(state.stop, window.stop), coverage[state.stop : window.stop])
            t, t_next = float(timesteps[step]), float(timesteps[step + 1])
            velocity = velocity_fn(state.slice(window.start, window.stop), t, k)
            state.contribute(window.start, velocity, weights[k], t, t_next)
            if on_step is not None:
                on_step()
        finished = state.pop_finished(steps)
        if finished is not None:
            yield finished


class _Band:
    """The latents in flight: frames [offset, stop) with their velocity sums for the current step."""

    def __init__(self) -> None:
        self.offset = 0
        self.latents: torch.Tensor | None = None
        self.velocity_sum: torch.Tensor | None = None
        self.pending = torch.zeros(0, dtype=torch.int64)  # contributions still missing this step
        self.coverage = torch.zeros(0, dtype=torch.int64)
        self.steps_done = torch.zeros(0, dtype=torch.int64)

    @property
    def stop(self) -> int:
        return self.offset + len(self.pending)

    def append(self, latents: torch.Tensor, coverage: torch.Tensor) -> None:
        self.latents = latents if self.latents is None else torch.cat([self.latents, latents], TIME_AXIS)
        zeros = torch.zeros_like(latents, dtype=torch.float32)
        self.velocity_sum = (
            zeros if self.velocity_sum is None else torch.cat([self.velocity_sum, zeros], TIME_AXIS)
        )
        self.pending = torch.cat([self.pending, coverage])
        self.coverage = torch.cat([self.coverage, coverage])
        self.steps_done = torch.cat([self.steps_done, torch.zeros_like(coverage)])

    def slice(self, start: int, stop: int) -> torch.Tensor:
        return self.latents[:, :, start - self.offset : stop - self.offset]

    def contribute(
        self, start: int, velocity: torch.Tensor, weight: torch.Tensor, t: float, t_next: float
    ) -> None:
        """Add one window's weighted velocity; step the frames whose every window has contributed."""
        lo = start - self.offset
        hi = lo + velocity.shape[TIME_AXIS]
        shape = (1, 1, -1, 1, 1)
        self.velocity_sum[:, :, lo:hi] += velocity.float() * weight.to(velocity.device).view(shape)
        self.pending[lo:hi] -= 1
        ready = (self.pending[lo:hi] == 0).nonzero().flatten() + lo
        if len(ready):
            # Ready frames of one window form one contiguous run (its middle plus any completed overlap).
            a, b = int(ready[0]), int(ready[-1]) + 1
            self.latents[:, :, a:b] = euler_step(
                self.latents[:, :, a:b], self.velocity_sum[:, :, a:b], t, t_next
            )
            self.velocity_sum[:, :, a:b] = 0.0
            self.pending[a:b] = self.coverage[a:b]
            self.steps_done[a:b] += 1

    def pop_finished(self, steps: int) -> tuple[int, torch.Tensor] | None:
        done = int((self.steps_done == steps).int().cumprod(0).sum())
        if done == 0:
            return None
        start, finished = self.offset, self.latents[:, :, :done].clone()
        self.latents = self.latents[:, :, done:]
        self.velocity_sum = self.velocity_sum[:, :, done:]
        self.pending, self.coverage, self.steps_done = (
            x[done:] for x in (self.pending, self.coverage, self.steps_done)
        )
        self.offset += done
        return start, finished
