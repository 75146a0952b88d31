"""The one refusal of pickled weight files, for every loader of the stack.

``torch.load`` / ``pickle`` run code stored in the file, so no loader of ours reads them: a
checkpoint must be safetensors. :func:`refuse_pickles` looks at a file, or at everything
under a folder (subfolders too), and raises a ValueError naming each pickled file it finds
(by the suffixes torch, transformers, diffusers, Lightning and pickle write, in any case).
"""

from __future__ import annotations

from pathlib import Path

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
DEFAULT_HINT = "convert them with safetensors first"


def is_pickle(path: Path) -> bool:
    """Whether ``path``'s name ends in a pickled-weights suffix (case-insensitive)."""
    return path.suffix.lower() in PICKLE_SUFFIXES


def pickled_files(path: str | Path) -> list[str]:
    """The pickled files at ``path``, sorted: for a folder every one under it, relative to
    it (``transformer/extra.bin``); for anything else its own name if it is one (existing
    or not: a weights path is judged by its name before it is opened)."""
    path = Path(path)
    if path.is_dir():
        found = (p for p in path.rglob("*") if is_pickle(p) and p.is_file())
        return sorted(str(p.relative_to(path)) for p in found)
    return [path.name] if is_pickle(path) else []


def refuse_pickles(path: str | Path, hint: str = DEFAULT_HINT) -> None:
    """A ValueError naming the pickled weight file(s) at ``path`` (a folder or a file), if
    any: ``found a.bin, b/c.pt in '<folder>': pickled weights are refused, only
    safetensors are loaded (<hint>)``."""
    path = Path(path)
    if found := pickled_files(path):
        where = path if path.is_dir() else path.parent
        raise ValueError(
            f"found {', '.join(found)} in {str(where)!r}: pickled weights are refused, only "
            f"safetensors are loaded ({hint})"
        )
