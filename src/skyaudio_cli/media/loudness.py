"""ITU-R BS.1770-4 integrated loudness of a mono wave in bounded memory (pyloudnorm's numbers).

pyloudnorm filters a float64 copy of the whole signal at once (several copies alive at a time:
~0.6 MB per second of 16 kHz audio, 400 MB for ten minutes). This meter takes pyloudnorm's own
K-weighting filters and runs them chunk by chunk, carrying the filter state, and sums each 400 ms
gating block (75 % overlap) from a rolling buffer with pyloudnorm's exact block bounds, so the
result is pyloudnorm's while memory stays at one chunk.
"""

import numpy as np
import scipy.signal

CHUNK_SAMPLES = 1 << 16  # 4 s at 16 kHz: the float64 filter copies stay small
_ABSOLUTE_GATE = -70.0
_RELATIVE_GATE = -10.0


def integrated_loudness_streaming(wave: np.ndarray, sample_rate: int) -> float:
    """Gated loudness in LUFS (-inf when every block is below the absolute gate)."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    filters = [(f.b, f.a, f.passband_gain) for f in meter._filters.values()]
    states = [np.zeros(max(len(a), len(b)) - 1) for b, a, _ in filters]  # silence before the start
    block_seconds, step = meter.block_size, 1.0 - meter.overlap
    seconds = wave.shape[0] / sample_rate
    num_blocks = int(np.round((seconds - block_seconds) / (block_seconds * step))) + 1

    powers = np.zeros(num_blocks)
    buffer, buffer_start, block = np.zeros(0), 0, 0
    for start in range(0, wave.shape[0], CHUNK_SAMPLES):
        chunk = wave[start : start + CHUNK_SAMPLES].astype(np.float64)
        for index, (b, a, gain) in enumerate(filters):
            filtered, states[index] = scipy.signal.lfilter(b, a, chunk, zi=states[index])
            chunk = gain * filtered
        buffer = np.concatenate([buffer, chunk])
        buffer_end = buffer_start + buffer.shape[0]
        last_chunk = start + CHUNK_SAMPLES >= wave.shape[0]
        while block < num_blocks:
            # The same float expressions as pyloudnorm, so the bounds round identically.
            lower = int(block_seconds * (block * step) * sample_rate)
            upper = int(block_seconds * (block * step + 1) * sample_rate)
            if upper > buffer_end and not last_chunk:
                break
            segment = buffer[lower - buffer_start : upper - buffer_start]
            powers[block] = (1.0 / (block_seconds * sample_rate)) * np.sum(np.square(segment))
            block += 1
        next_lower = int(block_seconds * (block * step) * sample_rate)
        drop = max(0, min(next_lower, buffer_end) - buffer_start)
        buffer, buffer_start = buffer[drop:], buffer_start + drop
    return _gated_loudness(powers)


def _gated_loudness(powers: np.ndarray) -> float:
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10.0 * np.log10(powers)
        above_absolute = loudness >= _ABSOLUTE_GATE
        if not above_absolute.any():
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10(np.mean(powers[above_absolute])) + _RELATIVE_GATE
        gated = (loudness > relative) & (loudness > _ABSOLUTE_GATE)
        if not gated.any():
            return float("-inf")
        return float(-0.691 + 10.0 * np.log10(np.mean(powers[gated])))
