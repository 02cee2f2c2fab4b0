"""AutoBackSwap's learned foreground detector (AutoBackSwap): one foreground probability per patch.

The network is torchvision's EfficientNet-B0 feature stack with the classifier dropped and a
1x1 convolution on the feature map as the last layer: it maps an S x S image to an
(S/stride) x (S/stride) grid of foreground logits, one per output cell ("patch"). The paper's
model keeps the whole backbone (stride 32: a 7 x 7 grid at 224). `stride` 16 or 8 cuts the
stack after the last block at that stride (EfficientNet-B0 stages 1-5 or 1-3), for finer
masks and much cheaper training: a bilinearly upsampled 7 x 7 grid cannot follow a blob's
outline closely (docs/autobackswap.md gives the numbers).

Training is binary cross-entropy on patch labels (docs/autobackswap.md: a 0/1 grid per image,
or a mask that is reduced to the grid by majority vote). A segmenter resizes the image to the
network input, predicts the patch probabilities, upsamples them bilinearly to the image size
and thresholds them into one mask.

labels.py     L.json, patch grids, the training set
model.py      the network, its checkpoint format, prediction
training.py   train_patchnet (seeded, deterministic)
segmenter.py  PatchNetSegmenter (registry name `patchnet`)

torch is imported lazily so that the label helpers work without it.
"""

from .labels import LabelledImage, load_training_set, patch_grid, read_labels, resize_input, resolve_input_size
from .model import build_patchnet, load_init, load_patchnet
from .segmenter import PatchNetSegmenter
from .training import TrainResult, patch_iou, train_patchnet

__all__ = ["LabelledImage", "PatchNetSegmenter", "TrainResult", "build_patchnet", "load_init", "load_patchnet",
           "load_training_set", "patch_grid", "patch_iou", "read_labels", "resize_input", "resolve_input_size",
           "train_patchnet"]
