"""The data path that runs a style model: sources -> stylizer -> smoothing -> sinks, the video pipeline and the live loop (webcam, serve). Needs no torch."""
