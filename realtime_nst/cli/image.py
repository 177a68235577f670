"""``rtnst image IN... OUT``: one image to a file, or many images / folders into a folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InputError, OutputError
from .common import add_model_options, make_stylizer

log = logging.getLogger("rtnst")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "image", help="stylise images",
        description="Stylise one image into a file (rtnst image in.jpg out.jpg), or several images and/or "
                    "folders into a folder (rtnst image a.jpg photos/ out_dir/). Existing outputs are kept "
                    "unless --overwrite is given.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="image file(s) or folder(s) of images")
    p.add_argument("output", metavar="OUT", help="output image file (one input), or a folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--suffix", default="", help="added to output file names in folder mode, e.g. _mosaic")
    add_model_options(p)
    p.set_defaults(handler=run)


def plan(inputs: list[str], output: str, *, suffix: str = "") -> list[tuple[Path, Path]]:
    """Pairs (input file, output file). A single file input with a non-folder output is file→file."""
    from ..imageio import IMAGE_SUFFIXES, list_images

    out = Path(output)
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = list_images(item)
            if not found:
                raise InputError(f"folder {item} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files += found
        elif item.exists():
            files.append(item)
        else:
            raise InputError(f"input {item} does not exist")
    single = len(inputs) == 1 and not Path(inputs[0]).is_dir() and not out.is_dir() and out.suffix
    if single:
        return [(files[0], out)]
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; with several inputs OUT must be a folder")
    pairs = [(f, out / f"{f.stem}{suffix}{f.suffix}") for f in files]
    names = [p[1] for p in pairs]
    clash = {n for n in names if names.count(n) > 1}
    if clash:
        raise OutputError(f"several inputs would write {sorted(clash)[0]}; use distinct names or --suffix")
    return pairs


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..imageio import read_image, write_image
    from ..files import check_outputs

    pairs = plan(args.inputs, args.output, suffix=args.suffix)
    out = Path(args.output)
    if pairs[0][1] != out:  # into a folder, made if needed (as for several inputs)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot make the output folder {out}: {exc.strerror}") from None
    # Before the model loads: outputs that are inputs, that exist, or whose folder is missing.
    check_outputs([dst for _, dst in pairs], overwrite=args.overwrite, inputs=[src for src, _ in pairs])
    with make_stylizer(args) as stylizer:
        for src, dst in tqdm(pairs, unit="image", disable=args.quiet or len(pairs) == 1):
            write_image(dst, stylizer.stylize(read_image(src)), overwrite=args.overwrite)
    log.info("rtnst: wrote %s", pairs[0][1] if len(pairs) == 1 else f"{len(pairs)} images to {out}")
    return 0
