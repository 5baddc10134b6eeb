"""Run one `skyaudio` command in this fresh process; print its wall time and peak RSS as JSON.

    python peak_memory_worker.py {linear|real} generate -p portrait.png -a speech.wav -m MODEL ...

`linear` swaps the loaded VAE for the linear stand-in (fast_vae.py). Used by the long-video
flat-memory test and bench/long_video.py. Peak RSS is VmHWM, not ru_maxrss: Linux carries
ru_maxrss over exec from the parent (which may have held the audio).
"""

import json
import re
import sys
import time

from fast_vae import FastVAE

from skyaudio_cli.cli.app import main
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline


def use_fast_vae() -> None:
    loaded = TalkingVideoPipeline.__init__

    def with_fast_vae(self, **parts):
        loaded(self, **{**parts, "vae": FastVAE()})

    TalkingVideoPipeline.__init__ = with_fast_vae


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\s+(\d+)", status.read())[1]) / 1024


if __name__ == "__main__":
    vae, *command = sys.argv[1:]
    if vae == "linear":
        use_fast_vae()
    started = time.monotonic()
    try:
        main(command)
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    print(json.dumps({"wall_s": time.monotonic() - started, "peak_rss_mb": peak_rss_mb()}))
