"""UrbanCars composites, in the reference's arithmetic (Whac-A-Mole `data_utils/object_scale.py`
and `gen_urbancars.py`): float pixels in [0, 1] (ToTensor), each object cropped to its mask's
box, scaled so its longer side is scale x 256 (the mask `nearest-exact`, the image bilinear with
antialias, both by F.interpolate's scale_factor), centred at (row, col) on a zero canvas, the
co-object blended onto the background first and the car over that with the hard masks, then
rounded as torchvision's save_image rounds (x * 255 + 0.5) and saved as JPEG.

The car's mask comes from its Stanford box through the recipe's segmenter (GrabCut on a CPU,
SAM on a GPU; the reference used MaskFormer panoptic masks); the co-object's from its LVIS
polygons. Cue-only test images: `bg_only` is the reference's own construction
(`urbancars_aug_gen_bg_only.py`: the left quarter of the decoded composite copied over the
car's and the co-object's regions), `car_only` and `co_obj_only` paste one object on black.

Beside each composite, the members the reference writes and its augmentation datasets read
(`gen_urbancars.py:324-350`, `dataset/urbancars_aug.py:186-205`): `mask.png` (the car's mask on
the canvas) and `co_occur_obj_mask.png` (the co-object's), as torchvision's save_image writes a
1-channel tensor (RGB PNG of 0 / 255); for train composites also `bg_only.png`, built from the
saved JPEG as `urbancars_aug_gen_bg_only.py:34-61` builds it for augmentation. A car's mask comes
from the reference's mask file (`stanford_cars/mask/cars_<split>/<stem>_mask.png`, resized to the
image as `src_dataset/stanford_cars.py:143-144` does) when the plan names one.
"""

from __future__ import annotations

import io
from contextlib import contextmanager

import numpy as np
from PIL import Image

from ..backends import SegmentRequest, get_segmenter
from ..backends.registry import worker_options
from ..chain import Chain, WorkerContext
from ..io.encoding import Encoding
from ..io.images import decode, open_image
from ..records import Failure, Sample
from ..sources.lvis import lvis_mask
from .common import Rendered, Step, attempt, render_sample, run_batched

CAR_CENTER = (0.5, 0.5)        # (row, col) as fractions of the canvas: (128, 128) at 256
CO_OBJ_CENTER = (0.5, 0.875)   # (128, 224) at 256: int(0.5 * S), int(0.875 * S)


def to_float(rgb: np.ndarray):
    import torch

    rgb = np.ascontiguousarray(rgb)
    if not rgb.flags.writeable:  # a decoded PIL image's buffer: torch warns on (and must not share) it
        rgb = rgb.copy()
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255.0)


def crop_to_mask(mask, image):
    """The reference's crop_mask_and_img: both cropped to the box of mask > 0.5."""
    binary = (mask > 0.5).long()
    ys, xs = binary[0].nonzero(as_tuple=True)
    if len(ys) == 0:
        raise ValueError("the object's mask is empty")
    top, bottom, left, right = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    return binary[:, top:bottom + 1, left:right + 1], image[:, top:bottom + 1, left:right + 1]


def rescale_onto_canvas(mask, image, scale: float, size: int, center: tuple[int, int]):
    """The reference's rescale_cropped_mask_and_img: longer side scale * size, centred at `center`."""
    import torch
    import torch.nn.functional as F

    factor = scale * size / max(mask.shape[1:])
    m = F.interpolate(mask[None].float(), scale_factor=factor, mode="nearest-exact")[0]
    im = F.interpolate(image[None], scale_factor=factor, mode="bilinear", align_corners=False, antialias=True)[0]
    h, w = m.shape[1:]
    top, left = max(0, center[0] - h // 2), max(0, center[1] - w // 2)
    h, w = min(h, size - top), min(w, size - left)  # never past the canvas (the reference's scales never are)
    canvas_m = torch.zeros((1, size, size))
    canvas_i = torch.zeros((3, size, size))
    canvas_m[:, top:top + h, left:left + w] = m[:, :h, :w]
    canvas_i[:, top:top + h, left:left + w] = im[:, :h, :w]
    return canvas_m, canvas_i


def to_uint8(x) -> np.ndarray:
    """torchvision save_image's rounding: x * 255 + 0.5, clamped, truncated."""
    import torch

    return x.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def compose(car: np.ndarray, car_mask: np.ndarray, background: np.ndarray, obj: np.ndarray, obj_mask: np.ndarray,
            params: dict, cue: str = "all") -> np.ndarray:
    """The composite (or a cue-only image) as uint8 (S, S, 3)."""
    return compose_with_masks(car, car_mask, background, obj, obj_mask, params, cue)[0]


def compose_with_masks(car: np.ndarray, car_mask: np.ndarray, background: np.ndarray, obj: np.ndarray,
                       obj_mask: np.ndarray, params: dict, cue: str = "all"):
    """(image uint8 (S, S, 3), the car's mask on the canvas, the co-object's): float (1, S, S) of 0 / 1."""
    import torch
    import torch.nn.functional as F

    size = int(params["image_size"])
    bg = to_float(background)
    if tuple(bg.shape[1:]) != (size, size):  # Places365 256 px is already S x S; other layouts are resized
        bg = F.interpolate(bg[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    car_m, car_i = rescale_onto_canvas(*crop_to_mask(torch.from_numpy(np.array(car_mask, np.float32))[None],
                                                     to_float(car)),
                                       float(params["car_scale"]), size,
                                       (int(CAR_CENTER[0] * size), int(CAR_CENTER[1] * size)))
    obj_m, obj_i = rescale_onto_canvas(*crop_to_mask(torch.from_numpy(np.array(obj_mask, np.float32))[None],
                                                     to_float(obj)),
                                       float(params["co_obj_scale"]), size,
                                       (int(CO_OBJ_CENTER[0] * size), int(CO_OBJ_CENTER[1] * size)))
    if cue == "car_only":
        return to_uint8(car_m * car_i), car_m, obj_m
    if cue == "co_obj_only":
        return to_uint8(obj_m * obj_i), car_m, obj_m
    blend = obj_m * obj_i + (1 - obj_m) * bg
    out = to_uint8(car_m * car_i + (1 - car_m) * blend)
    if cue == "bg_only":
        # the reference tiles the saved JPEG of the full composite: its pixels, not the exact ones
        return bg_only(decode(Encoding.of(params).as_format("jpg").encode(out), "RGB")), car_m, obj_m
    return out, car_m, obj_m


def pil_png(image: np.ndarray, level: int = 6) -> bytes:
    """A PNG as PIL writes it: at level 6, its default, the bytes of torchvision's save_image and of the
    reference's `Image.fromarray(...).save(path)`; the pixels are the same at any level."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def mask_png(mask) -> bytes:
    """save_image of a (1, S, S) 0 / 1 mask: the channel repeated to RGB, x * 255 + 0.5."""
    return pil_png(np.repeat(to_uint8(mask.float()), 3, axis=2))


def reference_car_mask(path: str, size: tuple[int, int]) -> np.ndarray:
    """The reference's car mask file as `src_dataset/stanford_cars.py:143-150` reads it: resized to
    the photo with PIL's default filter, ToTensor (x / 255), `crop_mask_and_img`'s > 0.5. The
    reference's files are 8-bit greyscale (`predict_car_mask.py:122-123`); others are read as such."""
    arr = np.asarray(open_image(path, "read_car_mask", mode="L").resize(size))
    return arr.astype(np.float32) / 255.0 > 0.5


def bg_only(img: np.ndarray) -> np.ndarray:
    """urbancars_aug_gen_bg_only.py: the left quarter of the (decoded) composite tiled over the
    car's two middle quarters, and its middle band over the co-object's right quarter."""
    h, w = img.shape[:2]
    out = img.copy()
    for_car = img[int(0.25 * h):int(0.75 * h), :int(0.25 * w)]
    for_obj = img[int(0.375 * h):int(0.625 * h), :int(0.25 * w)]
    out[int(0.25 * h):int(0.75 * h), int(0.25 * w):int(0.5 * w)] = for_car
    out[int(0.25 * h):int(0.75 * h), int(0.5 * w):int(0.75 * w)] = for_car
    out[int(0.375 * h):int(0.625 * h), int(0.75 * w):] = for_obj
    return out


def chain(params: dict, ctx: WorkerContext) -> Chain:
    """Per batch: the car masks the plan names as files read, the others from their boxes in one
    segmenter call (the segmenter is loaded only when a car needs it), then each composite."""
    # the worker's device reaches a torch segmenter (a CPU one's row takes no `device`)
    options = worker_options([params["segmenter"]], params.get("backend_options"), ctx.device)
    encoding = Encoding.of(params)
    loaded = []

    def segmenter():
        if not loaded:
            loaded.append(get_segmenter(params["segmenter"], **options))
        return loaded[0]

    def run(batch: list[Sample]):
        cars = [attempt(s.key, Step("read_image"), lambda s=s: np.asarray(open_image(s.inputs["car"], "read_image")))
                for s in batch]
        ok = [i for i, c in enumerate(cars) if not isinstance(c, Failure)]
        masks = {i: attempt(batch[i].key, Step("read_car_mask"),
                            lambda i=i: reference_car_mask(batch[i].inputs["car_mask"], cars[i].shape[1::-1]))
                 for i in ok if batch[i].inputs.get("car_mask")}
        items = [(batch[i], cars[i], SegmentRequest(boxes=np.array([batch[i].inputs["car_box"]], np.float32)))
                 for i in ok if i not in masks]
        # one segmenter call for the batch; if it fails, car by car, so only the bad car is lost
        found = run_batched(lambda its: segmenter().segment([it[1] for it in its], [it[2] for it in its]), items,
                            "segment")
        masks.update({i: r if isinstance(r, Failure) else (r.masks[0] if len(r.masks) else None)
                      for i, r in zip([i for i in ok if i not in masks], found)})
        with one_torch_thread():
            return [cars[i] if isinstance(cars[i], Failure) else masks[i] if isinstance(masks[i], Failure)
                    else _render(s, cars[i], masks[i], params, encoding) for i, s in enumerate(batch)]

    return run


@contextmanager
def one_torch_thread():
    """The composites' tensors (256 x 256) are too small for torch's intra-op threads, which on a busy
    CPU mostly spin: one thread while compositing (~8x faster under load), the caller's count restored."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _render(sample: Sample, car: np.ndarray, car_mask, params: dict, encoding: Encoding):
    cue = sample.meta["cue"]

    def transform(progress):
        if car_mask is None or not np.asarray(car_mask).any():
            progress.stage = "segment"
            source = (f"mask file {sample.inputs['car_mask']}" if sample.inputs.get("car_mask")
                      else f"the {params['segmenter']} segmenter")
            raise ValueError(f"no car mask from {source} inside box {sample.inputs['car_box']}")
        progress.stage = "read_background"
        background = np.asarray(open_image(sample.inputs["background"], "read_background"))
        progress.stage = "read_co_obj"
        obj = np.asarray(open_image(sample.inputs["co_obj"], "read_co_obj"))
        h, w = sample.inputs["co_obj_size"]
        if obj.shape[:2] != (h, w):
            raise ValueError(f"COCO image {sample.inputs['co_obj']} is {obj.shape[1]}x{obj.shape[0]}, LVIS says {w}x{h}")
        obj_mask = lvis_mask(sample.inputs["co_obj_segmentation"], h, w)
        progress.stage = "composite"
        image, car_m, obj_m = compose_with_masks(car, np.asarray(car_mask, bool), background, obj, obj_mask, params, cue)
        files = {"mask.png": mask_png(car_m), "co_occur_obj_mask.png": mask_png(obj_m)}
        if cue == "all" and sample.split == "train":  # the augmentation's background, from the saved JPEG
            # level 1: a photo at PIL's default level 6 costs ~4x the time, for the same pixels
            files["bg_only.png"] = pil_png(bg_only(decode(encoding.encode(image), "RGB")), level=1)
        return Rendered(image, dict(sample.meta), label=sample.meta["y"], files=files)

    # bg_only images are stored losslessly: they are already the decoded JPEG the reference tiles
    return render_sample(sample, encoding.as_format("png") if cue == "bg_only" else encoding, transform)
