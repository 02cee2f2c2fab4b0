"""WordNet parents of ImageNet classes, read from a file the user points to (never downloaded).

Three formats:
  * ImageNet's `wordnet.is_a.txt` (one `parent_wnid child_wnid` per line), names from a `words.txt`
    beside it (`wnid<TAB>name, synonym`) or from the ImageNet tree's LOC_synset_mapping.txt;
  * ForAug's `wordnet_data/*tree*.json` (tobna/ForAug wordnet_tree.py:150-164, 223-229: `nodes`
    keyed by the synset offset, each with `name` such as `dog.n.01` and `parent_id`);
  * nltk's WordNet, only when nltk and its data are installed (`nltk` as the path).

`prompts(wnid)` builds ForAug's GroundingDINO labels: the class and its `parent_labels` ancestors,
each "a <name>, a type of <parent name>." (segment_imagenet.py:61-66, 177-186).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BgforgeError

FORMATS = ("is_a", "foraug", "nltk")


def _wnid(offset: int) -> str:
    return f"n{int(offset):08d}"


@dataclass
class WordNet:
    parent: dict[str, str] = field(default_factory=dict)   # wnid -> its (first) hypernym's wnid
    names: dict[str, str] = field(default_factory=dict)    # wnid -> print name (ForAug: name before the first ".")
    source: str = ""

    def parents(self, wnid: str, n: int = 2) -> list[str]:
        """Up to n ancestors, nearest first (segment_imagenet.py:182: stops at the root)."""
        out, cur = [], wnid
        while len(out) < n and cur in self.parent and self.parent[cur] not in out:
            cur = self.parent[cur]
            out.append(cur)
        return out

    def name(self, wnid: str) -> str:
        return self.names.get(wnid, wnid)

    def prompt(self, wnid: str, parent_in_prompt: bool = True) -> str:
        """segment_imagenet.py:61-66: "an x." by the name's first letter; ", a type of <parent>." added."""
        name = self.name(wnid)
        text = f"an {name}." if name[:1] in "aeiou" else f"a {name}."
        par = self.parent.get(wnid)
        if par is None or not parent_in_prompt:
            return text
        return text[:-1] + f", a type of {self.name(par)}."

    def prompts(self, wnid: str, parent_labels: int = 2, parent_in_prompt: bool = True) -> list[str]:
        """The class's prompt, then each parent's with `_` as spaces (segment_imagenet.py:181-186;
        the class's own prompt keeps its underscores there, as here)."""
        labels = [self.prompt(wnid, parent_in_prompt)]
        labels += [self.prompt(p, parent_in_prompt).replace("_", " ") for p in self.parents(wnid, parent_labels)]
        return labels


def _read_names(path: Path) -> dict[str, str]:
    """`wnid<TAB or space>name, synonym` or `wnid: name` lines -> wnid -> first name."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.replace(":", " ", 1).partition(" ") if "\t" not in line else line.partition("\t")
        name = rest.strip().split(",")[0].strip()
        if head.startswith("n") and name:
            out[head.strip()] = name
    return out


def _load_is_a(path: Path, names_file: Path | None) -> WordNet:
    wn = WordNet(source=f"is_a:{path}")
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not all(p.startswith("n") for p in parts):
            raise BgforgeError(f"{path}:{i}: expected `parent_wnid child_wnid` (ImageNet's wordnet.is_a.txt), "
                               f"got {line[:60]!r}")
        wn.parent.setdefault(parts[1], parts[0])   # the first hypernym, as wordnet_tree.py:287
    for cand in ([names_file] if names_file else [path.with_name("words.txt"), path.with_name("LOC_synset_mapping.txt")]):
        if cand and cand.is_file():
            wn.names.update(_read_names(cand))
            break
    return wn


def _load_foraug(path: Path) -> WordNet:
    try:
        tree = json.loads(path.read_text(encoding="utf-8"))
        nodes = tree["nodes"]
        wn = WordNet(source=f"foraug:{path}")
        for key, node in nodes.items():
            w = _wnid(int(key))
            wn.names[w] = str(node["name"]).split(".")[0]   # WNEntry.print_name (wordnet_tree.py:129-131)
            if node.get("parent_id") is not None:
                wn.parent[w] = _wnid(int(node["parent_id"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BgforgeError(f"{path} is not a ForAug WordNet tree (JSON with `nodes`: offset -> name, parent_id): "
                           f"{exc}") from None
    return wn


def _load_nltk() -> WordNet:
    try:
        from nltk.corpus import wordnet as nwn
        nwn.ensure_loaded()
    except Exception as exc:  # noqa: BLE001 - nltk missing or its data not installed
        raise BgforgeError(f"nltk's WordNet is not available here ({type(exc).__name__}); point --set wordnet=PATH "
                           "at ImageNet's wordnet.is_a.txt or ForAug's wordnet_data tree JSON instead") from None

    class _Lazy(dict):
        def __missing__(self, w):
            s = nwn.synset_from_pos_and_offset("n", int(w[1:]))
            hyp = s.hypernyms()
            self.names_[w] = s.name().split(".")[0]
            if not hyp:
                raise KeyError(w)
            return self.setdefault(w, _wnid(hyp[0].offset()))

    parent = _Lazy()
    names: dict = {}
    parent.names_ = names
    return WordNet(parent=parent, names=names, source="nltk")


def load(path: str | Path | None, names_file: str | Path | None = None) -> WordNet:
    """The parent table from `path`: a .json ForAug tree, an is_a text file, or `nltk`."""
    if path is None or str(path) == "":
        raise BgforgeError("no WordNet file: set `wordnet` to ImageNet's wordnet.is_a.txt, ForAug's "
                           "wordnet_data/imagenet21k+1k_masses_tree.json, or `nltk` (where its data is installed)")
    if str(path) == "nltk":
        return _load_nltk()
    p = Path(path)
    if not p.is_file():
        raise BgforgeError(f"WordNet file {p} does not exist; point `wordnet` at wordnet.is_a.txt or a ForAug tree JSON")
    if p.suffix == ".json":
        return _load_foraug(p)
    return _load_is_a(p, Path(names_file) if names_file else None)


def write_synthetic(folder: Path, classes: dict[str, str]) -> Path:
    """A tiny wordnet.is_a.txt + words.txt for the demo: each class under a made-up parent, all
    parents under one grandparent (`object`). Returns the is_a file."""
    folder.mkdir(parents=True, exist_ok=True)
    lines, words = [], {"n00002684": "object"}
    for i, (w, name) in enumerate(sorted(classes.items())):
        par = f"n09{i:06d}"
        words[par] = f"{name.split(',')[0].strip().split()[-1]}_kind"
        words[w] = name.split(",")[0].strip()
        lines += [f"n00002684 {par}", f"{par} {w}"]
    (folder / "wordnet.is_a.txt").write_text("\n".join(lines) + "\n")
    (folder / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in sorted(words.items())))
    return folder / "wordnet.is_a.txt"
