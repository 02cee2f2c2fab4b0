"""Every closed set of values a user can pass, declared once: the library checks against these
tuples and the CLI builds its choice Enums from them (no imports here: `bgforge --help` stays fast)."""

LAYOUTS = ("shards", "folder", "imagefolder", "both", "hsi", "in9", "whac-a-mole")  # io/layout.py says what each writes
EXECUTORS = ("local", "ray")                                 # execution/local.py, execution/ray.py
PRECISIONS = ("auto", "fp32", "bf16", "fp16")                # backends/device.py
POSITIONS = ("center", "corner", "corner-random")            # stages/paste.py
IMAGE_FORMATS = ("jpg", "png")
TOP_K_RANKS = ("reference", "frequency")                    # report/spurious.py RANKINGS: edit's flip report order
