"""``rtnst image IN... OUT``: one image to a file, or many images / folders into a folder."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from ..errors import InputError, OutputError, RtnstError
from .common import add_model_options, make_stylizer, note_native_size

log = logging.getLogger("rtnst")
_TOLD_NO_EXIF = threading.Event()  # said once a run: images are written from several threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "image", help="stylise images",
        description="Stylise one image into a file (rtnst image in.jpg out.jpg), or several images and/or "
                    "folders into a folder (rtnst image a.jpg photos/ out_dir/). Existing outputs are kept "
                    "unless --overwrite is given. A file that cannot be read is reported and skipped; the "
                    "run goes on and ends with exit code 2 and the count (--fail-fast stops at the first). "
                    "An image's transparency is kept when the output is .png or .webp; another format is "
                    "written opaque, and said. HEIC photos (an iPhone's) are read with the heif extra "
                    "(pip install 'realtime_nst[heif]') and written as .jpg into a folder.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="image file(s) or folder(s) of images")
    p.add_argument("output", metavar="OUT", help="output image file (one input), or a folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--suffix", default="", help="added to output file names in folder mode, e.g. _mosaic")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="also the images in subfolders of a folder input (written to the same subfolders of OUT)")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first image that cannot be stylised (images are then done one at a time)")
    add_model_options(p)
    p.set_defaults(handler=run)


def plan(inputs: list[str], output: str, *, suffix: str = "", recursive: bool = False) -> list[tuple[Path, Path]]:
    """Pairs (input file, output file): batch.plan_pairs over the images of folder inputs."""
    from .batch import plan_pairs

    return plan_pairs(inputs, output, find=lambda folder: _images_in(folder, recursive=recursive), recursive=recursive,
                      suffix=suffix, written_as=_written_as)


def _images_in(folder: Path, *, recursive: bool) -> list[Path]:
    from ..imageio import list_images, readable_suffixes

    images = list_images(folder, recursive=recursive)
    _say_left_out(folder, recursive=recursive, only=not images)
    if not images:
        raise InputError(f"folder {folder} holds no images ({', '.join(sorted(readable_suffixes()))})")
    return images


def _say_left_out(folder: Path, *, recursive: bool, only: bool) -> None:
    """Names the photos in ``folder`` that rtnst does not read (HEIC without the heif extra, camera
    RAW): a warning, or the error when the folder holds nothing else (``only``)."""
    from collections import Counter

    from ..imageio import not_read

    kinds = Counter(why for f in folder.glob("**/*" if recursive else "*")
                    if f.is_file() and (why := not_read(f.suffix)))
    for (what, advice), count in kinds.items():
        if only and len(kinds) == 1:
            raise InputError(f"folder {folder} holds {what} only, which rtnst does not read: {advice}")
        log.warning("rtnst: %s: %d %s left out, which rtnst does not read: %s", folder, count,
                    what if count > 1 else what.replace("images", "image").replace("files", "file"), advice)


def _written_as(suffix: str) -> str:
    """An output's suffix in a folder: the input's, but for a format rtnst reads and cannot write."""
    from ..heif import HEIC_SUFFIXES, WRITTEN_AS

    return WRITTEN_AS if suffix.lower() in HEIC_SUFFIXES else suffix


def _stylise_file(stylizer, src: Path, dst: Path, *, overwrite: bool, read=None) -> tuple[int, int]:
    """Read (unless ``read``: the image and its transparency, read already), stylise and write one
    image; returns its (width, height)."""
    from ..exif import KEEPS_EXIF, read_exif
    from ..imageio import ALPHA_SUFFIXES, read_image_with_alpha, write_image

    frame, alpha = read or read_image_with_alpha(src)
    exif = read_exif(src)  # the date taken, camera and place, for photo libraries
    if exif and dst.suffix.lower() not in KEEPS_EXIF and not _TOLD_NO_EXIF.is_set():
        _TOLD_NO_EXIF.set()
        log.info("rtnst: %s cannot carry the photos' EXIF (date taken, camera) as rtnst writes it: "
                 "%s do", dst.suffix, "/".join(sorted(KEEPS_EXIF)))
    if alpha is not None and dst.suffix.lower() not in ALPHA_SUFFIXES:
        log.warning("rtnst: %s has transparency, which %s cannot hold: written opaque (write %s to "
                    "keep it)", src, dst.name, "/".join(sorted(ALPHA_SUFFIXES)))
        alpha = None
    write_image(dst, stylizer.stylize(frame), alpha=alpha, overwrite=overwrite, exif=exif)
    return frame.shape[1], frame.shape[0]


def run(args: argparse.Namespace) -> int:
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from tqdm import tqdm

    from ..files import check_outputs
    from ..imageio import check_image_format, read_image_with_alpha
    from ..runtime.session import plan_threads
    from ..signals import stop_on_signals
    from .batch import make_folders

    _TOLD_NO_EXIF.clear()
    pairs = plan(args.inputs, args.output, suffix=args.suffix, recursive=args.recursive)
    out = Path(args.output)
    make_folders(pairs, args.output)
    # Before the model loads: outputs that are inputs, that exist, whose folder is missing, or whose
    # format cannot be told from the name.
    check_outputs([dst for _, dst in pairs], overwrite=args.overwrite, inputs=[src for src, _ in pairs])
    if pairs[0][1] == out:
        check_image_format(out)
    # One image is read before the model loads, so an unreadable one is reported at once.
    read = read_image_with_alpha(pairs[0][0]) if len(pairs) == 1 else None
    failed: list[tuple[Path, RtnstError]] = []
    done, noted = 0, False
    stop = threading.Event()
    # Several images: one per core at once, each with one onnxruntime thread, as `rtnst video` runs
    # frames (reading and writing a photo take as long as stylising it, on one core each). 24 photos
    # of 12 MP, Intel Xeon, 2 cores: 4.0 s one at a time, 2.6 s two at once.
    thread_plan = plan_threads(threads=args.threads) if len(pairs) > 1 else None
    with make_stylizer(args, threads=thread_plan.threads if thread_plan else None) as stylizer, stop_on_signals(stop):
        # --fail-fast: one at a time and none queued, so that nothing after the failing image is written
        workers = thread_plan.workers_for(stylizer) if thread_plan and not args.fail_fast else 1
        depth = workers if args.fail_fast else 2 * workers  # one queued beyond each worker: none waits for a read
        todo, running = iter(pairs), {}
        with ThreadPoolExecutor(workers, thread_name_prefix="rtnst-image") as pool, \
                tqdm(total=len(pairs), unit="image", disable=args.quiet or len(pairs) == 1) as bar:

            def top_up() -> None:
                while not stop.is_set() and len(running) < depth and (pair := next(todo, None)):
                    running[pool.submit(_stylise_file, stylizer, *pair, overwrite=args.overwrite, read=read)] = pair[0]

            top_up()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                if stop.is_set():
                    for other in running:
                        other.cancel()  # the ones not started; those started are finished and written
                for future in finished:
                    src = running.pop(future)
                    if future.cancelled():
                        continue
                    try:
                        size = future.result()
                    except (InputError, OutputError) as exc:
                        if args.fail_fast or len(pairs) == 1:  # then nothing else is running or queued
                            if done:
                                written = f"{done} of {len(pairs)} images were written before it"
                                raise type(exc)(f"{exc} ({written})") from None
                            raise
                        failed.append((src, exc))
                        log.error("rtnst: skipped %s: %s", src, exc)
                    else:
                        done += 1
                        if not noted:
                            noted = note_native_size(stylizer, *size, args)
                    bar.update(1)
                top_up()
    if stop.is_set():
        print(f"rtnst: interrupted: {done} of {len(pairs)} images written to {out}", flush=True)
        return 130
    if failed:
        raise InputError(f"{len(failed)} of {len(pairs)} images could not be stylised (listed above; first: "
                         f"{failed[0][0]}); the other {done} were written to {out}")
    log.info("rtnst: wrote %s", pairs[0][1] if len(pairs) == 1 else f"{done} images to {out}")
    return 0
