"""What a run resumes from (a result's chain state or a checkpoint folder on disk) and the
folder its checkpoints go to, checked on the host before anything is traced."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from infer import checkpoint as checkpoints
from infer import validation
from infer.io import folder_path
from infer.result import Result
from infer.run_state import ChainState
from infer.store import is_infer_store


def resume_source(resume, init):
    """``None``, the :class:`ChainState` of a result, or a checkpoint read from disk."""
    if resume is None:
        return None
    if init is not None:
        raise ValueError(
            "init and resume cannot both be given: resumed chains start where they stopped."
        )
    if isinstance(resume, Result):
        if resume.state is None:
            raise ValueError(
                f"resume=result needs the chains' state, and this {resume.sampler} result has "
                "none (results of exact samplers and ADVI, loaded from a file or made by "
                "Result.from_draws carry none). A Markov-chain run that may need continuing "
                "after a save keeps a checkpoint folder (checkpoint='run_dir'), which "
                "resume='run_dir' continues; exact samplers and ADVI need no resuming: draw "
                "again with another seed."
            )
        return resume.state
    if isinstance(resume, ChainState):
        return resume
    if isinstance(resume, (str, Path)):
        return Saved(checkpoints.load(Path(resume).expanduser()))
    raise TypeError(
        f"resume must be an infer.Result or a checkpoint folder; got {type(resume).__name__}."
    )


class Saved:
    """A checkpoint read from disk, seen like a :class:`ChainState`."""

    def __init__(self, saved: checkpoints.Checkpoint):
        self.saved = saved
        meta = saved.meta
        self.step = int(meta["step"])
        self.num_warmup = int(meta["num_warmup"])
        self.thin = int(meta["thin"])
        self.fingerprint = meta["fingerprint"]
        self.seed = meta.get("seed")
        self.num_chains = int(np.shape(saved.chain_keys)[0])
        self.superchain_size = int(meta.get("superchain_size", 1))
        self.check_every = meta.get("check_every")  # None: no until=, or an older folder
        self.checkpoint_every = meta.get("checkpoint_every")
        self.keep = meta.get("keep")  # the draw names the run keeps (None: all)


def checkpoint_folder(checkpoint, resume) -> Path | None:
    if checkpoint is not None:
        folder = folder_path(checkpoint, "checkpoint")
        if folder.exists() and not folder.is_dir():
            raise ValueError(
                f"checkpoint={str(folder)!r} is a file; checkpoints go into a folder: pass a "
                "folder that does not exist yet (it is made) or an empty one."
            )
        if is_infer_store(folder):
            raise ValueError(
                f"checkpoint={str(folder)!r} holds a run's Zarr store (store=); checkpoints go "
                "into a folder of their own: pass a new or empty folder."
            )
        source = resume_folder(resume)
        resuming_it = source is not None and source.resolve() == folder.resolve()
        if source is not None and not resuming_it:
            raise ValueError(
                f"resume={str(resume)!r} with checkpoint={str(folder)!r}: a resumed run keeps "
                f"writing to its own folder, {str(source)!r}, whose earlier chunks a "
                f"checkpoint in {str(folder)!r} would need but not hold. Leave checkpoint out "
                f"(the run continues in {str(source)!r}), or copy the folder first "
                f"(shutil.copytree({str(source)!r}, {str(folder)!r})) and resume the copy."
            )
        if checkpoints.checkpoints(folder) and not resuming_it:
            raise ValueError(
                f"checkpoint={str(folder)!r} already holds a run's checkpoints: pass "
                f"resume={str(folder)!r} to continue that run, or choose an empty folder."
            )
        if not resuming_it and (others := _not_checkpoint_files(folder)):
            raise ValueError(
                f"checkpoint={str(folder)!r} holds files of its own ({others}); checkpoints "
                "go into a folder of their own, as store= does: pass a new or empty folder."
            )
        return folder
    return resume_folder(resume)


def _not_checkpoint_files(folder: Path, most: int = 3) -> str:
    """The first ``most`` names in ``folder`` that no checkpointing run writes (checkpoints,
    chunks, their temporary files), listed; empty when there are none (or no folder)."""
    if not folder.is_dir():
        return ""
    own = re.compile(r"^(checkpoint|chunk)-\d+\.npz$|^\.")  # hidden: .DS_Store, our .tmp
    system = {"Thumbs.db", "desktop.ini"}  # a file manager's, in a folder that looks empty
    others = sorted(p.name for p in folder.iterdir() if not (own.match(p.name) or p.name in system))
    return ", ".join(others[:most]) + (f" and {len(others) - most} more" * (len(others) > most))


def resume_folder(resume) -> Path | None:
    """The checkpoint folder ``resume`` names (a folder or a checkpoint in one), else None."""
    if isinstance(resume, (str, Path)):
        path = Path(resume).expanduser()
        return path if path.is_dir() else path.parent
    return None


def resumed_superchain_size(superchains, num_chains: int, source) -> int:
    """Chains per superchain (1 without superchains), checked against ``num_chains``; a
    resumed run (``source``) keeps its own, and another one given is refused."""
    kept = getattr(source, "superchain_size", 1) or 1
    if superchains is None:
        return kept
    size = validation.superchain_size(superchains, num_chains)
    if source is not None and size != kept:
        started = f"superchains={num_chains // kept}" if kept > 1 else "no superchains"
        raise ValueError(
            f"superchains={superchains} but the run resumed was started with {started}: a "
            "resumed run keeps its chains' grouping (which chains shared a start). Leave "
            "superchains out when resuming."
        )
    return size
