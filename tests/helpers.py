"""Helpers shared by tests: a straightforward re-implementation of the reference generator, tars and PNGs
written as another tool would."""

import io
import tarfile

import numpy as np
from PIL import Image


def reference_crop_and_resize(source, target_w, target_h):
    """group_DRO's generate_waterbirds.crop_and_resize, as published (float64, PIL Lanczos)."""
    sw, sh = source.size
    if sw < target_w or sh < target_h:
        wr = (target_w, int((target_w / sw) * sh))
        if wr[0] >= target_w and wr[1] >= target_h:
            source = source.resize(wr, Image.LANCZOS)
        else:
            source = source.resize((int((target_h / sh) * sw), target_h), Image.LANCZOS)
        return reference_crop_and_resize(source, target_w, target_h)
    if sw / sh > target_w / target_h:
        nw = int(target_w / target_h * sh)
        off = (sw - nw) // 2
        box = (off, 0, sw - off, sh)
    else:
        nh = int(sw / (target_w / target_h))
        off = (sh - nh) // 2
        box = (0, off, sw, sh - off)
    return source.crop(box).resize((target_w, target_h), Image.LANCZOS)


def reference_composite(bird_path, seg_path, place_path):
    img = np.asarray(Image.open(bird_path).convert("RGB"))
    seg = np.asarray(Image.open(seg_path).convert("RGB")) / 255
    black = np.around(img * seg).astype(np.uint8)
    place = reference_crop_and_resize(Image.open(place_path).convert("RGB"), img.shape[1], img.shape[0])
    masked = np.around(np.asarray(place) * (1 - seg)).astype(np.uint8)
    return black + masked


def build(recipe, ctx, out, **options):
    """The public `bgforge.build` in the shape older tests call it: a BuildContext for the roots and demo,
    the RunConfig and OutputOptions fields as keywords (workers=2, slice_count=3, shard_size=4, layout=...)
    beside seed and overwrite; progress bars off unless asked for. Only `planned=` (a plan made
    beforehand, which the public function does not take) goes to the library's bgforge.building.build."""
    from dataclasses import fields

    import bgforge
    from bgforge.building import build as library_build

    run = bgforge.RunConfig(**{"progress": False, **{k: options.pop(k) for k in list(options)
                                                     if k in {f.name for f in fields(bgforge.RunConfig)}}})
    output = bgforge.OutputOptions(**{k: options.pop(k) for k in list(options)
                                      if k in {f.name for f in fields(bgforge.OutputOptions)}})
    if options.get("planned") is not None:
        return library_build(recipe, ctx, out, run, shard_size=output.shard_size, min_shards=output.min_shards,
                             layout=output.layout, limit=output.limit, **options)
    options.pop("planned", None)
    return bgforge.build(recipe, out, roots=ctx.roots, demo=ctx.demo, output=output, run=run, **options)


def write_tar(path, members: dict) -> None:
    """A tar of {name: bytes} written by tarfile (not bgforge), as another tool would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def flat_png(value: int) -> bytes:
    """An 8x8 PNG of one grey value."""
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
