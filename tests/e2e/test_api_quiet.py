"""The Python API prints nothing the user did not ask for, and leaves the libraries' settings alone."""

import subprocess
import sys


def test_loading_a_pipeline_prints_nothing_and_restores_the_library_settings(tiny_model):
    script = f"""
from transformers.utils import logging as transformers_logging
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline

transformers_logging.set_verbosity_info()
TalkingVideoPipeline.from_pretrained({str(tiny_model)!r}, device="cpu", dtype="fp32")
print(transformers_logging.get_verbosity() == transformers_logging.INFO,
      transformers_logging.is_progress_bar_enabled())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no torchvision notice, no attention-backend notice, no "Loading weights"
    assert done.stdout.split() == ["True", "True"]
