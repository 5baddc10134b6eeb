"""Face regions for lip-sync editing: detection, tracking, crop geometry, lower-face masks, paste-back.

Everything here is numpy/OpenCV only (no torch), so it is cheap to test and to run on every frame.
"""
