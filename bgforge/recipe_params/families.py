"""The records of the families planned from a recipe file or a stage command (ForNet's: fornet.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import FamilyParams, _Backends


@dataclass(frozen=True)
class _BirdsOnPlaces(FamilyParams):
    """What Waterbirds and its OOD variant share: species, places, the composite's size and resampling."""

    land_places: list | None = None
    water_places: list | None = None
    waterbird_species: list | None = None
    species_match: str | None = None
    val_frac: float | None = None
    output_size: Any = "original"
    resampling: str = "lanczos"


@dataclass(frozen=True)
class WaterbirdsParams(_BirdsOnPlaces):
    FAMILY: ClassVar[str] = "waterbirds"
    train_strength: float | None = None
    val_strength: float | None = None
    test_strength: float | None = None


@dataclass(frozen=True)
class SpuriousOodParams(_BirdsOnPlaces):
    FAMILY: ClassVar[str] = "spurious_ood"
    confounder_strength: Any = None
    ood_set: str | None = None
    ood_exclude_id_backgrounds: bool | None = None


@dataclass(frozen=True)
class HsiParams(_Backends):
    FAMILY: ClassVar[str] = "hard_spurious"
    segmenter: str = "auto"
    inpainter: str = "auto"
    classes: Any = None
    splits: list | None = None
    positions: list | None = None
    sizes: list | None = None
    corner: str | None = None
    difficulty: dict | None = None
    quota: Any = None
    val_images_per_class: int | None = None
    allow_reuse: bool = False
    canvas: int = 224
    ar_preserve: bool = False
    fg_mode: str = "box"
    background_class: dict | None = None
    background_jpeg_quality: int | None = None
    random_background: str = "per_class"
    pairing: str = "shared"
    pairing_scope: str = "all"
    pairing_block: int = 100
    pairing_draws: str = "reference"
    self_pairing: bool = False
    remove_objects: str = "sequential"
    object_box: str = "last"
    resampling: str = "bicubic"
    rounding: str = "truncate"


@dataclass(frozen=True)
class BapParams(FamilyParams):
    FAMILY: ClassVar[str] = "bap"
    foreground_source: str | None = None
    categories: list | None = None
    withheld_categories: list | None = None
    coco_split: str = "train2017"
    include_crowd: bool = False
    min_box: int | None = None
    exclude_splits: list | None = None
    exclude_metadata: str | None = None
    exclude_from_recipe: str | None = None
    exclude_seed: int | None = None
    places_categories: list | None = None
    texture_dir: str | None = None
    use_textures: bool = False
    test_fraction: float | None = None
    max_foregrounds: int | None = None
    balance_classes: bool = False
    anchors: int | None = None
    alignments: int | None = None
    canvas: int = 224
    scale_range: list | None = None
    max_side: int | None = None
    upscale: bool = False
    mask_threshold: int = 100
    blur_radius: float = 1
    phase: str | None = None   # the foregrounds phase's own params (planners/bap.py)
    source: str | None = None


@dataclass(frozen=True)
class UrbanCarsParams(FamilyParams):
    FAMILY: ClassVar[str] = "urbancars"
    segmenter: str | None = None
    backend_options: dict | None = None
    reference_metadata: str | None = None
    body_types_file: str | None = None
    car_masks: str = "auto"
    cue_sets: list | None = None
    demo_sizes: list | None = None
    num_train: int | None = None
    num_val: int | None = None
    num_test: int | None = None
    image_size: int | None = None
    car_scale: float | None = None
    co_obj_scale: float | None = None
    eval_ratio: float | None = None
    train_bg_ratio: float | None = None
    train_co_obj_ratio: float | None = None
    urban_backgrounds: list | None = None
    country_backgrounds: list | None = None
    country_body_types: list | None = None
    urban_co_objects: list | None = None
    country_co_objects: list | None = None
    urban_co_obj_min_box_area: float | None = None
    country_co_obj_min_mask_area: float | None = None


@dataclass(frozen=True)
class AutoBackSwapParams(_Backends):
    FAMILY: ClassVar[str] = "autobackswap"
    segmenter: str = "patchnet"
    inpainter: str = "auto"
    input: str | None = None
    manifest: str | None = None
    patchnet_model: str | None = None
    patchnet_threshold: float | None = None
    ratio: float = 1.0
    include_originals: bool = True
    feather: float = 0


@dataclass(frozen=True)
class CocoPlacesParams(FamilyParams):
    FAMILY: ClassVar[str] = "coco_places"
    classes: list | None = None
    biased_places: list | None = None
    unbiased_places: list | None = None
    val_ood_places: list | None = None
    test_ood_places: list | None = None
    backgrounds: str | None = None
    place_draw: str | None = None
    strength: float | None = None
    min_area: float | None = None
    image_size: int | None = None
    demo_sizes: list | None = None
    num_train: int | None = None
    num_val: int | None = None
    num_test: int | None = None


@dataclass(frozen=True)
class SiScoreParams(FamilyParams):
    FAMILY: ClassVar[str] = "si_score"
    foreground_source: str | None = None
    foregrounds: Any = None
    backgrounds: Any = None
    coco_categories: list | None = None
    coco_min_box: int | None = None
    coco_per_class: int | None = None
    coco_split: str | None = None
    bg_resolution: int | None = None
    demo_bg_resolution: int | None = None
    num_bgs_per_fg_instance: int | None = None
    min_pct_inside_image: float | None = None
    areas: Any = None
    area_range: list | None = None
    coords: Any = None
    coord_range: list | None = None
    demo_coord_range: list | None = None
    rotations: Any = None
    rotation_range: list | None = None


@dataclass(frozen=True)
class SegmentParams(_Backends):
    """`bgforge segment` (cli/stages.py): no dilation unless asked."""

    FAMILY: ClassVar[str] = "segment"
    input: str | None = None
    manifest: str | None = None
    prompt: str | None = None
    prompt_from_label: bool = False
    dilation: int = 0


@dataclass(frozen=True)
class InpaintParams(_Backends):
    """`bgforge inpaint` and the background phases of Hard-Spurious-ImageNet, AutoBackSwap and ForNet."""

    FAMILY: ClassVar[str] = "inpaint"
    input: str | None = None
    manifest: str | None = None
    prompt: str | None = None
    prompt_from_label: bool = False
    one_by_one: bool = False
    remove_objects: str | None = None   # None: one_by_one says (sequential) or not (union)
    object_mask: bool = False
    object_box: str = "largest"
    resize: int | None = None
    resampling: str = "lanczos"
    stored_jpeg_quality: int | None = None


@dataclass(frozen=True)
class EditParams(_Backends):
    """`bgforge edit` (cli/edit.py passes every key; ASPIRE's README removal kernel, 10, is the CLI's default)."""

    FAMILY: ClassVar[str] = "edit"
    input: str | None = None
    manifest: str | None = None
    phrases: str | None = None
    edits: list | None = None
    grounding: str | None = None
    dilation_shape: str = "vertical"
    phrase_collapse: str = "reference"
    classify_stored: bool = False
    object_phrase: str | None = None
    backgrounds: str | None = None
    places_root: str | None = None
    background_map: str | None = None
    classifier: str | None = None
    classifier_weights: str | None = None
    class_index: str | None = None
    classifier_preprocess: str = "imagenet"
    classifier_resize: int | None = None
    classifier_crop: int | None = None
    classifier_mean: list | None = None
    classifier_std: list | None = None
    classifier_precision: str = "fp32"   # the CLI passes --precision's value
    classifier_batch: int = 32          # images per classifier call
    top_k: int = 3                      # phrases per class in the flip report (cli --top-k)
    top_k_rank: str = "reference"


@dataclass(frozen=True)
class VariantsParams(FamilyParams):
    """`bgforge variants` (cli/variants.py): ImageNet-9's background variants of a labelled input."""

    FAMILY: ClassVar[str] = "variants"
    input: str | None = None
    manifest: str | None = None
    variants: Any = None
    construction: str = "reference"
    class_order: str | None = None


@dataclass(frozen=True)
class CompositeParams(FamilyParams):
    """`bgforge composite` (cli/stages.py); its chain is Hard-Spurious-ImageNet's paste (stages/hard_spurious.py)."""

    FAMILY: ClassVar[str] = "composite"
    fg: str | None = None
    fg_manifest: str | None = None
    bg: str | None = None
    bg_manifest: str | None = None
    size: int | None = None
    position: str | None = None
    bg_mode: str | None = None
    fg_mode: str | None = None
    ar_preserve: bool = False
    canvas: int = 224
