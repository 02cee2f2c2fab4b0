"""--overwrite as a transaction: a kill at any point leaves an output that the next run completes.

The steps, each of which may be the last a killed run did:
  1. `OUT/.bgforge/overwrite.json` is written (atomically): the new plan's identity (the sha256 of its
     header) and every file the earlier run wrote (guard.previous_files, read while its plan,
     markers and journals are still there): from now on the output is "being overwritten";
  2. the new plan.json replaces the old one (atomically): the new plan is recorded before anything
     is deleted;
  3. every listed file goes (the old tars, markers, journals and images, the old metadata, manifest
     and card), and everything else in OUT/.bgforge but the lock and the intent;
  4. the intent is removed; only then does any new shard run, so every tar not in the new plan is
     gone before the first new shard commits.
A run that finds the intent (with or without --overwrite) redoes 1-4 with the union of the
recorded list and what the folder names now, then builds: the same shards, byte for byte, as a
clean run. A run without --overwrite whose plan is not the interrupted one is refused (exit 2):
it would otherwise keep the old run's shards under the new plan's names.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

from ..errors import BgforgeError
from ..io import strict_json
from ..io.atomic import write_atomic
from ..io.layout import bookkeeping_dir
from ..io.shards import json_bytes
from . import guard
from . import plan as planmod

INTENT_NAME = "overwrite.json"
# A test hook (tests/execution/test_interrupts.py): SIGKILL this process at the named step.
KILL_ENV = "BGFORGE_TEST_KILL_AT"
STEPS = ("intent", "plan", "removing", "removed", "done")


def intent_path(out) -> Path:
    return bookkeeping_dir(out) / INTENT_NAME


def plan_identity(plan: planmod.Plan) -> str:
    """The sha256 of the plan's header (recipe, seed, inputs and their fingerprint, layout, shard count)."""
    return hashlib.sha256(json_bytes(plan.header())).hexdigest()


def _kill_point(step: str) -> None:
    if os.environ.get(KILL_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def read_intent(out) -> dict | None:
    """The interrupted overwrite's record, or None. Untrusted like every bookkeeping file: the paths
    it lists are only ever removed through guard's checks (plain relative paths inside OUT)."""
    path = intent_path(out)
    try:
        doc = strict_json.loads(path.read_bytes(), max_depth=None)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BgforgeError(f"{path} is damaged ({exc}); an --overwrite was interrupted: re-run with --overwrite") from None
    ok = isinstance(doc, dict) and isinstance(doc.get("plan"), str) and \
        all(isinstance(doc.get(k), list) and all(isinstance(x, str) for x in doc[k]) for k in ("remove", "phases"))
    if not ok:
        raise BgforgeError(f"{path} is not the record bgforge writes; an --overwrite was interrupted: "
                           "re-run with --overwrite")
    return doc


def _refuse_orphans(out: Path) -> None:
    """Shards or markers with no plan.json (an --overwrite of an older bgforge killed half way): which
    plan they belong to is unknown, so none may count as committed under the new one."""
    from . import commit as commitmod

    orphans = [*(out / "shards").glob("*.tar"), *commitmod.stats_dir(out).glob("*.stats.json")]
    if orphans:
        raise BgforgeError(f"{out} holds shards but no plan.json (e.g. {orphans[0].name}: an interrupted --overwrite "
                           "of an earlier bgforge?); re-run with --overwrite to remove them and build anew")


def record_plan(out: Path, plan: planmod.Plan, overwrite: bool, phase_folders: list[str]) -> None:
    """Write plan.json (or check it against the existing one); with --overwrite, or when an earlier
    --overwrite was interrupted, as the transaction above. Called with the build's lock held."""
    out = Path(out)
    intent = read_intent(out)
    if intent is None and not overwrite:
        if not planmod.plan_path(out).exists():
            _refuse_orphans(out)
        planmod.save_or_check_plan(out, plan, overwrite=False)
        return
    identity = plan_identity(plan)
    if intent is not None and not overwrite and intent["plan"] != identity:
        raise BgforgeError(f"{out}: an --overwrite with a different plan (recipe, seed, inputs or layout) was "
                           "interrupted and its old files are partly removed; re-run that command, or add "
                           "--overwrite to start this one fresh")
    phases = sorted(set(phase_folders) | set(intent["phases"] if intent else ()))
    remove = list(dict.fromkeys([*(intent["remove"] if intent else ()), *guard.previous_files(out, phases)]))
    write_atomic(intent_path(out), json_bytes({"plan": identity, "phases": phases, "remove": remove}) + b"\n",
                 root=out)
    _kill_point("intent")
    planmod.remove_dead_temporaries(planmod.plan_path(out))
    planmod.write_plan(planmod.plan_path(out), plan)
    _kill_point("plan")
    half = len(remove) // 2
    guard.remove_files(out, remove, phases, keep={"plan.json", f".bgforge/{INTENT_NAME}"},
                       progress=lambda i: _kill_point("removing") if i == half else None)
    _kill_point("removed")
    intent_path(out).unlink()
    _kill_point("done")
