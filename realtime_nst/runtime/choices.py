"""The runtime's choices and defaults that the CLI offers as options, importable without numpy,
OpenCV or FFmpeg so that building the parser (`rtnst --help`) stays fast. smoothing.py and sinks.py
take theirs from here."""

SMOOTH_KINDS = ("none", "ema", "flow")
# Weight of the history where it is trusted. Measured with `rtnst eval flicker` on both shared clips
# with the reference models udnie and wave: at 0.6 flow lowers the warping error by 52-63% while the
# style distance moves by -2..+9%; 0.5 reached only 47% on one of them, 0.7 cost up to +14% style.
DEFAULT_STRENGTH = 0.6
# `rtnst video` and `rtnst bench`'s end-to-end pipeline smooth along the optical flow unless told
# otherwise: a file is made once and watched many times, and unsmoothed the high-contrast styles flicker
# at 4-10x the clip's own warping error; flow removes 55-66% of it (models/README.md) for ~20% of the
# speed. The live commands keep "none": their frame rate is the budget (the page of `rtnst serve` has a
# switch).
VIDEO_SMOOTH = "flow"

# x264's speed presets, fastest first. The default keeps veryfast's quality at the same CRF (PSNR
# on stylised 720p frames 38.9 against 38.1 dB) for 30-50% less CPU time, which `rtnst video`
# spends on the model; its files are up to ~35% larger. ultrafast drops CABAC: 2-3x the size.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
DEFAULT_PRESET = "superfast"
