"""skyaudio: talking-portrait video from speech (SkyReels-Audio method on diffusers)."""

__version__ = "0.1.0"
