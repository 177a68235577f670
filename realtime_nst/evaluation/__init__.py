"""Measuring models: style/content quality, flicker (warping error) and speed."""
