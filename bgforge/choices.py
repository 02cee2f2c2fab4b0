"""Every closed set of values a user can pass, declared once: the library checks against these
tuples and the CLI builds its choice Enums from them (no imports here: `bgforge --help` stays fast)."""

LAYOUTS = ("shards", "folder", "imagefolder", "both", "hsi", "in9", "whac-a-mole")  # io/layout.py says what each writes
EXECUTORS = ("local", "ray")                                 # execution/local.py, execution/ray.py
PRECISIONS = ("auto", "fp32", "bf16", "fp16")                # backends/device.py
POSITIONS = ("center", "corner", "corner-random")            # stages/paste.py
IMAGE_FORMATS = ("jpg", "png")
TOP_K_RANKS = ("reference", "frequency")                     # report/spurious.py RANKINGS: edit's flip report order
PHRASE_COLLAPSES = ("reference", "bgforge")                  # report/spurious.py: ASPIRE's clustering | bgforge's
CLASSIFIER_PRESETS = ("reference", "imagenet")               # backends/classifier.py PREPROCESS_PRESETS
SAM_MODELS = ("vit_h", "vit_l", "vit_b")                     # backends/sam.py (segment-anything's registry)
STATS_SPLITS = ("train", "val")                              # `bgforge stats imagenet --split`
BG_MODES = ("original", "random")                            # stages/paste.py: the image's own background | another class's
FG_MODES = ("box", "mask")                                   # stages/paste.py: the box crop | the object's mask

# Recipe parameters' closed sets, by the module that acts on each value
CORNERS = ("top-right", "top-left", "bottom-left", "bottom-right")   # stages/paste.py (position: corner)
# Which of an image's boxes is its pasted object: the last listed (the Corner Cases reference's
# `boxes[-1]`) or the one of largest area (the first such on a tie).
OBJECT_BOX = ("last", "largest")                             # stages/paste.py
ROUNDING = ("truncate", "round")                             # stages/paste.py
REMOVE_OBJECTS = ("union", "sequential")                     # stages/inpaint.py
DILATION_SHAPES = ("square", "vertical")                     # backends/masks.py dilate
SIZE_MODES = ("range", "min", "max", "mean")                 # stages/fornet.py
# stages/fornet.py; ForAug's code spells orig "original" (fornet.py:30)
BACKGROUND_COMBINATIONS = ("orig", "same", "all")
# stages/variants.py
VARIANTS = ("original", "only_bg_b", "only_bg_t", "no_fg", "only_fg", "mixed_same", "mixed_rand", "mixed_next")
VARIANT_CONSTRUCTIONS = ("reference", "bgforge")  # stages/variants_reference.py (main.py's) | bgforge's rules (docs/variants.md)
RANDOM_BACKGROUND = ("per_class", "per_sample")              # planners/hsi_backgrounds.py
PAIRING_SCOPES = ("block", "all")                            # planners/hsi_backgrounds.py
PAIRINGS = ("per_run", "shared")                             # planners/hsi_backgrounds.py
PAIRING_DRAWS = ("reference", "keyed")  # planners/hsi_replay.py: the reference's draws replayed | bgforge's keyed draws
OOD_SETS = ("correct", "released", "none")                   # planners/spurious_ood.py
CAR_MASKS = ("auto", "files", "segmenter")                   # planners/urbancars.py
EDITS = ("remove", "background")                             # stages/edit.py
GROUNDINGS = ("provided", "grounded-sam")                    # planners/edit.py
EDIT_GROUNDINGS = ("auto", *GROUNDINGS)                      # `bgforge edit --grounding`: auto picks one of GROUNDINGS
PLACE_DRAWS = ("exact", "bernoulli")                         # planners/coco_places.py
COCO_PLACES_BACKGROUNDS = ("reference", "disjoint")          # planners/coco_places.py
