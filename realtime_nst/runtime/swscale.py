"""FFmpeg's swscale flag bits (libswscale/swscale.h), which PyAV's ``reformat(interpolation=...)`` takes
as an int: PyAV names the filters but not the bits that combine with them."""

BILINEAR, BICUBIC, AREA = 0x2, 0x4, 0x20
FULL_CHR_H_INT = 0x2000  # chroma computed at every pixel, not shared by a pair
ACCURATE_RND = 0x40000  # exact rounding; also keeps swscale off its fast paths, which repeat 4:2:0 chroma over 2x2
EXACT = ACCURATE_RND | FULL_CHR_H_INT  # what every conversion between YUV and BGR here adds to its filter
