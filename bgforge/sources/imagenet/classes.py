"""ImageNet class ids (wnids), the Hard-Spurious-ImageNet-10 classes and LOC_synset_mapping.txt."""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import BgforgeError

WNID_RE = re.compile(r"^n\d{8}$")

# Hard-Spurious-ImageNet-10 (Corner Cases (Fatima et al.)): wnids and full names exactly as in the public
# LOC_synset_mapping.txt (checked line by line against two published copies).
HSI10_SYNSETS = {
    "n02088632": "bluetick",
    "n01669191": "box turtle, box tortoise",
    "n02085620": "Chihuahua",
    "n02085782": "Japanese spaniel",
    "n02085936": "Maltese dog, Maltese terrier, Maltese",
    "n02086240": "Shih-Tzu",
    "n02086646": "Blenheim spaniel",
    "n02086910": "papillon",
    "n02087394": "Rhodesian ridgeback",
    "n02088238": "basset, basset hound",
    "n04251144": "snorkel",
    "n02860847": "bobsled, bobsleigh, bob",
    "n03733131": "maypole",
    "n03992509": "potter's wheel",
    "n03447447": "gondola",
    "n02817516": "bearskin, busby, shako",
    "n04540053": "volleyball",
    "n02802426": "basketball",
    "n02951358": "canoe",
    "n09288635": "geyser",
    "n12057211": "yellow lady's slipper, yellow lady-slipper, Cypripedium calceolus, Cypripedium parviflorum",
}
_FG = ["n02088632", "n01669191", "n02085620", "n02085782", "n02085936",
       "n02086240", "n02086646", "n02086910", "n02087394", "n02088238"]
_BG = ["n04251144", "n02860847", "n03733131", "n03992509", "n03447447", "n02817516",
       "n04540053", "n02802426", "n02951358", "n09288635", "n12057211"]
HSI10_FOREGROUND = [(w, HSI10_SYNSETS[w].split(", ")[0]) for w in _FG]
HSI10_BACKGROUND = [(w, HSI10_SYNSETS[w].split(", ")[0]) for w in _BG]


def read_synset_mapping(path: Path) -> dict[str, list[str]]:
    """wnid -> names ("tench", "Tinca tinca") from a LOC_synset_mapping.txt; {} when the file is missing."""
    names: dict[str, list[str]] = {}
    if not path.is_file():
        return names
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, rest = line.strip().partition(" ")
        if not WNID_RE.match(wnid):
            raise BgforgeError(f"{path}:{n}: expected '<wnid> <name>, <synonym>...', got {line!r}")
        rest = rest.strip().lstrip(":").strip()  # some copies write `n01440764 : tench`
        names[wnid] = [s.strip() for s in rest.split(",") if s.strip()]
    return names
