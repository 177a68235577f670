"""``rtnst image IN... OUT``: one image to a file, or many images / folders into a folder."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from ..errors import InputError, OutputError, RtnstError
from .common import add_model_options, make_stylizer, note_native_size

log = logging.getLogger("rtnst")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "image", help="stylise images",
        description="Stylise one image into a file (rtnst image in.jpg out.jpg), or several images and/or "
                    "folders into a folder (rtnst image a.jpg photos/ out_dir/). Existing outputs are kept "
                    "unless --overwrite is given. A file that cannot be read is reported and skipped; the "
                    "run goes on and ends with exit code 2 and the count (--fail-fast stops at the first). "
                    "An image's transparency is kept when the output is .png or .webp; another format is "
                    "written opaque, and said.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="image file(s) or folder(s) of images")
    p.add_argument("output", metavar="OUT", help="output image file (one input), or a folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--suffix", default="", help="added to output file names in folder mode, e.g. _mosaic")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="also the images in subfolders of a folder input (written to the same subfolders of OUT)")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first image that cannot be stylised")
    add_model_options(p)
    p.set_defaults(handler=run)


def plan(inputs: list[str], output: str, *, suffix: str = "", recursive: bool = False) -> list[tuple[Path, Path]]:
    """Pairs (input file, output file). A single file input with an output that is not a folder is
    file→file; otherwise every image goes into the folder OUT (a folder input's subfolders mirrored)."""
    from ..imageio import IMAGE_SUFFIXES, list_images

    out = Path(output)
    found: list[tuple[Path, Path]] = []  # (file, its path relative to OUT)
    for item in map(Path, inputs):
        if item.is_dir():
            images = list_images(item, recursive=recursive)
            if not recursive:
                subfolders = [d for d in item.iterdir() if d.is_dir()]
                if subfolders:
                    log.warning("rtnst: %s: %d subfolder%s not searched (--recursive searches them)", item,
                                len(subfolders), "" if len(subfolders) == 1 else "s")
            if not images:
                raise InputError(f"folder {item} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found += [(f, f.relative_to(item)) for f in images]
        elif item.exists():
            found.append((item, Path(item.name)))
        else:
            raise InputError(f"input {item} does not exist")
    single = len(inputs) == 1 and not Path(inputs[0]).is_dir() and not out.is_dir() and (out.suffix or out.exists())
    if single:
        return [(found[0][0], out)]
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; with several inputs or a folder OUT must be a folder")
    pairs = [(f, out / rel.with_name(f"{rel.stem}{suffix}{rel.suffix}")) for f, rel in found]
    names = [p[1] for p in pairs]
    clash = {n for n in names if names.count(n) > 1}
    if clash:
        raise OutputError(f"several inputs would write {sorted(clash)[0]}; use distinct names or --suffix")
    return pairs


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..files import check_outputs
    from ..imageio import ALPHA_SUFFIXES, read_image_with_alpha, write_image
    from ..signals import stop_on_signals

    pairs = plan(args.inputs, args.output, suffix=args.suffix, recursive=args.recursive)
    out = Path(args.output)
    if pairs[0][1] != out:  # into a folder (and its subfolders), made if needed
        for folder in sorted({dst.parent for _, dst in pairs}):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot make the output folder {folder}: {exc.strerror}") from None
    # Before the model loads: outputs that are inputs, that exist, or whose folder is missing.
    check_outputs([dst for _, dst in pairs], overwrite=args.overwrite, inputs=[src for src, _ in pairs])
    failed: list[tuple[Path, RtnstError]] = []
    done, noted = 0, False
    stop = threading.Event()
    with make_stylizer(args) as stylizer, stop_on_signals(stop):
        for src, dst in tqdm(pairs, unit="image", disable=args.quiet or len(pairs) == 1):
            if stop.is_set():
                break
            try:
                frame, alpha = read_image_with_alpha(src)
                if alpha is not None and dst.suffix.lower() not in ALPHA_SUFFIXES:
                    log.warning("rtnst: %s has transparency, which %s cannot hold: written opaque (write %s to "
                                "keep it)", src, dst.name, "/".join(sorted(ALPHA_SUFFIXES)))
                    alpha = None
                write_image(dst, stylizer.stylize(frame), alpha=alpha, overwrite=args.overwrite)
                done += 1
                if not noted:
                    noted = note_native_size(stylizer, frame.shape[1], frame.shape[0], args)
            except (InputError, OutputError) as exc:
                if args.fail_fast or len(pairs) == 1:
                    if done:
                        raise type(exc)(f"{exc} ({done} of {len(pairs)} images were written before it)") from None
                    raise
                failed.append((src, exc))
                log.error("rtnst: skipped %s: %s", src, exc)
    if stop.is_set():
        print(f"rtnst: interrupted: {done} of {len(pairs)} images written to {out}", flush=True)
        return 130
    if failed:
        raise InputError(f"{len(failed)} of {len(pairs)} images could not be stylised (listed above; first: "
                         f"{failed[0][0]}); the other {done} were written to {out}")
    log.info("rtnst: wrote %s", pairs[0][1] if len(pairs) == 1 else f"{done} images to {out}")
    return 0
