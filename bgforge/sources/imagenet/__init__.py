"""ImageNet (ILSVRC-2012 CLS-LOC) images that carry bounding boxes, in either common layout.

classic  root/train/<wnid>/<wnid>_<n>.JPEG
         root/val/*.JPEG  (flat)  or  root/val/<wnid>/*.JPEG  (per class)
         root/Annotation/<wnid>/<key>.xml                 train boxes (ILSVRC2012_bbox_train)
         root/Annotation/val/, root/val_annotations/, or next to the val images: val boxes
kaggle   root/ILSVRC/Data/CLS-LOC/{train,val}/...         (same file names)
         root/ILSVRC/Annotations/CLS-LOC/train/<wnid>/<key>.xml, .../val/<key>.xml
both     root/LOC_train_solution.csv, root/LOC_val_solution.csv   `ImageId,PredictionString`
         with PredictionString = repeated `wnid x0 y0 x1 y1`
         root/LOC_synset_mapping.txt   `n01440764 tench, Tinca tinca`

Boxes come from PASCAL-VOC XML when a split has them (the XML carries the image size, so boxes
are clipped and checked against the image), else from the LOC CSV. CSV boxes have no image
size and listing never decodes images (1.2M of them would take hours), so for CSV boxes only
zero/negative area is checked here; `clip_box` is the check a later stage applies once it
knows the real size (`bgforge.report.stats` does). Every dropped box or image lands in `problems`.

classes.py      wnids, the Hard-Spurious-ImageNet-10 classes, LOC_synset_mapping.txt
annotations.py  XML and CSV boxes, clip_box
layout.py       classic or Kaggle layout, where each split's boxes come from
source.py       ImageNetSource: listing a split's images with valid boxes
"""

from .annotations import clip_box
from .classes import HSI10_BACKGROUND, HSI10_FOREGROUND, HSI10_SYNSETS
from .source import ImageNetImage, ImageNetSource

__all__ = ["HSI10_BACKGROUND", "HSI10_FOREGROUND", "HSI10_SYNSETS", "ImageNetImage", "ImageNetSource",
           "clip_box"]
