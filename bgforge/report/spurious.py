"""The spurious-feature report of `bgforge edit` (ASPIRE): spurious.json, .md and flips.png.

An edit that flips the classifier (right on the original, wrong on the edit) makes its phrase
a candidate spurious feature of the image's class: the removed foreground phrase, or for a
background swap the original background phrase. Per class, phrases are collapsed and the
top-k most often flipping are reported with their flip rate and example keys.

Collapsing and ranking (`collapse`, `rank`; defaults "reference" and "reference"):
- reference (default, report/phrase_collapse.py): ASPIRE's `parse_top_k_classes.py:43-75` --
  Porter stem of the whole phrase, WordNet lemma where NLTK's data is installed, first cluster
  with a CountVectorizer cosine >= 0.7 -- ranked by its score (`:198-222`): the sum over the
  cluster's phrases of flips / occurrences in the class's correctly classified images' phrase
  lists, ties by flips, then cluster index, descending.
- bgforge (`collapse="bgforge"`), in two steps:
  1. normalize_phrase: lower case, punctuation to spaces, drop articles (a, an, the), numbers
     (digits, ordinals such as 2nd, number words zero..twenty) and vague quantifiers (some,
     several, many, few, multiple), then stem plurals with suffix rules (`stem`). "A red ball",
     "red balls" and "2 red balls" all become "red ball".
  2. merge: difflib.SequenceMatcher ratio >= MERGE_THRESHOLD (0.85) between a normalised phrase
     and a group's representative ("grey cat" / "gray cat" 0.875, "living room" / "livingroom"
     0.95; "red ball" / "blue ball" 0.71 stay apart; the cost: "red ball" / "red bell" merge).
     Phrases are visited by decreasing flips and compared with representatives only.
  Its groups are ranked by `rank`: reference = flips / edits of the group, ties by flips (the
  closest the bgforge groups come to the reference's score); frequency = most flips first.
"""

from __future__ import annotations

import difflib
import io
import json
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageDraw

from ..choices import TOP_K_RANKS
from ..sources.phrases import normalize_phrase

MERGE_THRESHOLD = 0.85
EDIT_KINDS = ("remove", "background")
# How bgforge-collapsed groups are ordered (the reference collapse comes ranked by its own score).
# reference: flips / edits, ties by flips; frequency: the paper's wording ("highest frequencies").
RANKINGS = {"reference": lambda g: (-g["flip_rate"], -g["flips"], g["phrase"]),
            "frequency": lambda g: (-g["flips"], -g["flip_rate"], g["phrase"])}
assert tuple(RANKINGS) == TOP_K_RANKS   # the closed set --top-k-rank is checked against


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


# ---------------------------------------------------------------- building the report
def _class_of(row) -> str:
    if row.get("class_name") not in (None, ""):
        return str(row["class_name"])
    return str(row["label_index"]) if row.get("label_index") is not None else "unlabelled"


def collapse(stats: dict, threshold: float = MERGE_THRESHOLD) -> list[dict]:
    """stats: normalised phrase -> {edits, eligible, flips, variants, edit_types, flipped}; returns merged groups."""
    order = sorted(stats, key=lambda n: (-stats[n]["flips"], -stats[n]["edits"], n))
    groups: list[dict] = []
    for norm in order:
        s = stats[norm]
        home = next((g for g in groups if similarity(norm, g["phrase"]) >= threshold), None)
        if home is None:
            home = {"phrase": norm, "edits": 0, "eligible": 0, "flips": 0, "variants": set(), "edit_types": set(),
                    "flipped": []}
            groups.append(home)
        for k in ("edits", "eligible", "flips"):
            home[k] += s[k]
        home["variants"] |= s["variants"]
        home["edit_types"] |= s["edit_types"]
        home["flipped"] += s["flipped"]
    return groups


class Tally:
    """Per class and normalised phrase: edits, flips and flipped keys, added one row at a time.

    Only aggregates and the flipped rows (for the contact sheet) are kept, so memory does not
    grow with the number of edits.
    """

    def __init__(self):
        self.classes: dict = defaultdict(lambda: {"originals": 0, "originals_correct": 0, "edits": 0, "flips": 0,
                                                  "label_index": None, "phrases": {}, "raw": {}, "correct": set()})
        self.classifier = None
        self.flipped: dict = {}   # key -> the row fields the contact sheet needs
        self.originals: dict = {}   # source key -> (the original's key, its shard): beside its flips on the sheet

    def add(self, r: dict) -> None:
        name = _class_of(r)
        c = self.classes[name]
        if r.get("label_index") is not None:
            c["label_index"] = r["label_index"]
        self.classifier = self.classifier or r.get("classifier")
        if r.get("edit") == "original":
            self.originals[str(r.get("source_key") or r["key"])] = (r["key"], r.get("shard"))
            c["originals"] += 1
            c["originals_correct"] += bool(r.get("correct_before"))
            if r.get("correct_before"):
                c["correct"].add(str(r.get("source_key") or r["key"]))
            return
        if r.get("edit") not in EDIT_KINDS:
            return
        phrase = str(r.get("phrase") or r["edit"])
        flipped = r.get("flip") is True
        c["edits"] += 1
        c["flips"] += flipped
        s = c["phrases"].setdefault(normalize_phrase(phrase), {"edits": 0, "eligible": 0, "flips": 0, "variants": set(),
                                                               "edit_types": set(), "flipped": []})
        s["edits"] += 1
        s["eligible"] += bool(r.get("correct_before"))
        s["flips"] += flipped
        s["variants"].add(phrase)
        s["edit_types"].add(r["edit"])
        raw = c["raw"].setdefault(phrase.replace("-", " "), {"edits": 0, "flips": 0, "flipped": [], "edit_types": set()})
        raw["edits"] += 1
        raw["flips"] += flipped
        raw["edit_types"].add(r["edit"])
        if flipped:
            raw["flipped"].append(r["key"])
            s["flipped"].append(r["key"])
            self.flipped[r["key"]] = {"class": name, "phrase": phrase, "shard": r.get("shard"),
                                      "pred_after_name": r.get("pred_after_name"), "source_key": r.get("source_key")}

    def report(self, top_k: int = 3, examples: int = 3, threshold: float = MERGE_THRESHOLD,
               rank: str = "reference", collapse: str = "reference", occurrences=None) -> dict:
        """`collapse` reference: ASPIRE's code (report/phrase_collapse.py), ranked by its score with
        `occurrences(class, correct keys) -> {phrase: count}` (None: a phrase's edits); bgforge: the
        normalised phrases merged by difflib (the module docstring)."""
        from . import phrase_collapse

        classes = {}
        for name in sorted(self.classes):
            c = self.classes[name]
            groups = self._reference_groups(c, name, occurrences) if collapse == "reference" else \
                self._bgforge_groups(c, threshold)
            if not (collapse == "reference" and rank == "reference"):  # the reference's groups come ranked
                groups.sort(key=RANKINGS[rank])
            top = [{"phrase": g["phrase"], "flips": g["flips"], "edits": g["edits"], "eligible": g.get("eligible"),
                    "flip_rate": g["flip_rate"], "score": g.get("score"), "edit_types": sorted(g["edit_types"]),
                    "variants": sorted(g["variants"]), "examples": sorted(g["flipped"])[:examples],
                    "flipped_keys": sorted(g["flipped"])} for g in groups]
            classes[name] = {"label_index": c["label_index"], "images": c["originals"],
                             "originals_correct": c["originals_correct"], "edits": c["edits"], "flips": c["flips"],
                             "top": top[:top_k], "more_flipping_phrases": max(0, len(top) - top_k)}
        merge = ({"normalize": f"Porter stem of the whole phrase, then {phrase_collapse.lemmatizer_note()}",
                  "similarity": "CountVectorizer cosine", "threshold": phrase_collapse.COSINE_THRESHOLD}
                 if collapse == "reference" else
                 {"normalize": "lower case; drop articles, numbers, quantifiers; stem plurals",
                  "similarity": "difflib.SequenceMatcher.ratio", "threshold": threshold})
        return {"top_k": top_k, "top_k_rank": rank, "collapse": collapse, "classifier": self.classifier,
                "merge": merge, "flip": "the original is predicted correctly and the edited image is not",
                "flip_rate": "flips / edits of the phrase (eligible = edits whose original was right)",
                "score": "reference: sum over the cluster's phrases of flips / occurrences in the class's correctly "
                         "classified images' phrase lists",
                "totals": {k: sum(c[k] for c in classes.values())
                           for k in ("images", "originals_correct", "edits", "flips")},
                "classes": classes}

    @staticmethod
    def _bgforge_groups(c: dict, threshold: float) -> list[dict]:
        groups = [g for g in collapse(c["phrases"], threshold) if g["flips"] > 0]
        for g in groups:
            g["flip_rate"] = round(g["flips"] / g["edits"], 4)
        return groups

    @staticmethod
    def _reference_groups(c: dict, name: str, occurrences) -> list[dict]:
        from . import phrase_collapse

        raw = {p: v for p, v in c["raw"].items() if v["flips"] > 0}
        occ = occurrences(name, c["correct"]) if occurrences else {p: v["edits"] for p, v in raw.items()}
        groups = []
        for cl in phrase_collapse.ranked({p: v["flips"] for p, v in raw.items()}, occ):
            members = [raw[p] for p in cl["members"]]
            edits = sum(m["edits"] for m in members)
            groups.append({"phrase": cl["members"][0], "flips": cl["count"], "edits": edits,
                           "flip_rate": round(cl["count"] / edits, 4), "score": round(cl["score"], 6),
                           "edit_types": set().union(*(m["edit_types"] for m in members)),
                           "variants": set(cl["members"]), "flipped": [k for m in members for k in m["flipped"]]})
        return groups


RANK_WORDS = {"reference": "flip rate (flips / edits), ties by flips", "frequency": "flips, ties by flip rate",
              "reference-score": "ASPIRE's score (sum of flips / occurrences over the cluster's phrases), ties by "
                                 "flips, then cluster order"}


def rank_words(report: dict) -> str:
    """How the report's top phrases are ranked, in words."""
    rank = report.get("top_k_rank", "reference")
    return RANK_WORDS["reference-score" if rank == "reference" and report.get("collapse") == "reference" else rank]


def build_report(rows, top_k: int = 3, examples: int = 3, threshold: float = MERGE_THRESHOLD,
                 rank: str = "reference", collapse: str = "reference", occurrences=None) -> dict:
    tally = Tally()
    for r in rows:
        tally.add(r)
    return tally.report(top_k, examples, threshold, rank, collapse, occurrences)


# ---------------------------------------------------------------- files
def iter_rows(out):
    """Every written sample's json (plus its shard), one committed shard's stats at a time."""
    from ..execution.commit import stats_dir

    for path in sorted(stats_dir(out).glob("*.stats.json")):
        yield from json.loads(path.read_text())["rows"]


def phrase_occurrences(phrases_path) :
    """occurrences(class, correct keys) -> {phrase: count} over those images' fg + bg phrase lists."""
    from ..sources.phrases import load_phrases

    entries = load_phrases(phrases_path) if phrases_path else {}

    def occurrences(_name: str, keys: set) -> dict:
        counts: dict = defaultdict(int)
        for key in keys:
            e = entries.get(key)
            for phrase in (*(e.foreground if e else ()), *((e.background,) if e and e.background else ())):
                counts[phrase.replace("-", " ")] += 1
        return counts

    return occurrences


def write_report(out, top_k: int = 3, rank: str = "reference", collapse: str = "reference",
                 phrases_path=None) -> dict:
    """OUT/spurious.json, OUT/spurious.md and OUT/.bgforge/preview/flips.png from a finished run."""
    from ..io.atomic import write_atomic
    from ..io.metadata import write_json

    out = Path(out)
    tally = Tally()
    for r in iter_rows(out):
        tally.add(r)
    report = tally.report(top_k, rank=rank, collapse=collapse,
                          occurrences=phrase_occurrences(phrases_path) if phrases_path else None)
    sheet = flip_sheet(out, tally.flipped, report, originals=tally.originals)
    report["contact_sheet"] = None if sheet is None else str(sheet.relative_to(out))
    write_json(out / "spurious.json", report, root=out)
    write_atomic(out / "spurious.md", to_markdown(report).encode(), root=out)
    return report


def to_markdown(report: dict) -> str:
    t = report["totals"]
    right = (lambda c: f" ({c['originals_correct']} predicted correctly)") if report["classifier"] else (lambda c: "")
    lines = ["# Spurious-feature candidates", "",
             f"Classifier: `{report['classifier'] or 'none'}`. A flip: {report['flip']}. "
             f"{t['images']} images{right(t)}, {t['edits']} edits, {t['flips']} flips.",
             "",
             f"Phrases are collapsed ({report['merge']['normalize']}; then merged when "
             f"{report['merge']['similarity']} >= {report['merge']['threshold']}). Top {report['top_k']} per class, "
             f"ranked by {rank_words(report)}.", ""]
    if not report["classifier"]:
        lines += ["No classifier was given (`--classifier`), so no edit can flip; the edits are in the shards.", ""]
    for name, c in report["classes"].items():
        lines += [f"## {name}", "",
                  f"{c['images']} images{right(c)}, {c['edits']} edits, {c['flips']} flips.", ""]
        if not c["top"]:
            lines += ["No flipping phrase.", ""]
            continue
        lines += ["| # | phrase | flips | edits | flip rate | edit | variants | examples |",
                  "|---|---|---|---|---|---|---|---|"]
        for i, e in enumerate(c["top"], 1):
            lines.append(f"| {i} | {e['phrase']} | {e['flips']} | {e['edits']} | {e['flip_rate']:.2f} | "
                         f"{', '.join(e['edit_types'])} | {'; '.join(e['variants'])} | {', '.join(e['examples'])} |")
        if c["more_flipping_phrases"]:
            lines.append(f"\n{c['more_flipping_phrases']} more phrase(s) flipped this class (see spurious.json).")
        lines.append("")
    if report.get("contact_sheet"):
        lines += [f"Flipped edits per class: `{report['contact_sheet']}`.", ""]
    return "\n".join(lines)


def _thumbs(out, want: set, thumb: int) -> dict:
    """key -> thumbnail of each wanted (shard, key)."""
    from ..io.shards import iter_shard

    images = {}
    for shard in sorted({s for s, _ in want if s}):
        keys = {k for s, k in want if s == shard}
        for key, files in iter_shard(Path(out) / shard):
            ext = next((e for e in ("jpg", "png") if e in files), None)
            if key in keys and ext:
                im = Image.open(io.BytesIO(files[ext])).convert("RGB")
                im.thumbnail((thumb, thumb))
                images[key] = im
    return images


def flip_sheet(out, flipped: dict, report: dict, per_class: int = 4, thumb: int = 112, originals: dict | None = None):
    """OUT/.bgforge/preview/flips.png, beside the split previews: a row per class with its flipped
    edits (top phrases first), each beside its original (left: original, right: edit), captioned
    with the whole phrase (wrapped) and the wrong prediction.
    `flipped`: key -> {class, phrase, shard, pred_after_name, source_key}; `originals`: source key ->
    (original's key, shard). None when nothing flipped."""
    from ..io.atomic import write_atomic
    from ..io.layout import preview_dir
    from ..io.preview import CAPTION_FONT, LABEL_FONT, LINE_H, wrap

    originals = originals or {}
    picks = {}
    for name, c in report["classes"].items():
        keys = [k for e in c["top"] for k in e["flipped_keys"]]
        keys += sorted(k for k, r in flipped.items() if r["class"] == name and k not in keys)
        if keys:
            picks[name] = keys[:per_class]
    if not picks:
        return None
    wanted = {k for ks in picks.values() for k in ks}
    source = {k: originals.get(str(flipped[k].get("source_key"))) for k in wanted}   # edit -> (original, shard)
    want = {(flipped[k]["shard"], k) for k in wanted} | {(o[1], o[0]) for o in source.values() if o}
    images = _thumbs(out, want, thumb)
    label_w, pad = 150, 4
    cell_w = 2 * thumb + 2 + 3 * pad
    captions = {k: wrap(flipped[k]["phrase"], cell_w - pad) + wrap(f"-> {flipped[k]['pred_after_name']}", cell_w - pad)
                for k in wanted}
    cell_h = thumb + LINE_H * max(len(c) for c in captions.values()) + pad
    sheet = Image.new("RGB", (label_w + per_class * cell_w, len(picks) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (name, keys) in enumerate(picks.items()):
        y = row * cell_h
        for i, line in enumerate(wrap(name, label_w - 8, LABEL_FONT) + ["(original | edit)"]):
            draw.text((4, y + 8 + 16 * i), line, fill="black" if line[0] != "(" else "gray", font=LABEL_FONT)
        for col, key in enumerate(keys):
            x = label_w + col * cell_w
            orig = source[key][0] if source[key] else None
            for i, k in enumerate((orig, key)):
                if k in images:
                    im = images[k]
                    sheet.paste(im, (x + i * (thumb + 2) + (thumb - im.width) // 2, y + (thumb - im.height) // 2))
            draw.line([(x + thumb, y), (x + thumb, y + thumb)], fill="white", width=2)
            for i, line in enumerate(captions[key]):
                draw.text((x, y + thumb + 1 + LINE_H * i), line, fill="black" if not line.startswith("->") else "firebrick",
                          font=CAPTION_FONT)
    path = preview_dir(out) / "flips.png"
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    write_atomic(path, buf.getvalue(), root=out)
    return path
