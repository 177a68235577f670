"""FFmpeg's swscale flag bits (libswscale/swscale.h), which PyAV's ``reformat(interpolation=...)`` takes
as an int: PyAV names the filters but not the bits that combine with them."""

BILINEAR, BICUBIC, AREA = 0x2, 0x4, 0x20
FULL_CHR_H_INT = 0x2000  # chroma computed at every pixel, not shared by a pair
ACCURATE_RND = 0x40000  # exact rounding; also keeps swscale off its fast paths, which repeat 4:2:0 chroma over 2x2
EXACT = ACCURATE_RND | FULL_CHR_H_INT  # what every conversion between YUV and BGR here adds to its filter


class Scaler:
    """``reformat(frame, **kwargs)`` through one swscale context kept for a stream of frames.

    ``VideoFrame.reformat`` sets up a new context for every frame, and since PyAV 17 with a pool of
    slice threads as well, which it then tears down: for a 640x360 BGR frame into a 1280x720 encoder,
    2.0 ms of CPU against 1.0 kept. One thread: the pipeline already keeps the cores busy."""

    def __init__(self) -> None:
        self._reformatter = None
        self._threads: dict = {"threads": 1}

    def __call__(self, frame, **kwargs):
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        try:
            return self._reformatter.reformat(frame, **kwargs, **self._threads)
        except TypeError:
            if not self._threads:
                raise
            self._threads = {}  # PyAV before 17 scales on the calling thread and takes no thread count
            return self._reformatter.reformat(frame, **kwargs)
