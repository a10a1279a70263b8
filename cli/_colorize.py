"""The `colorize` job: discover targets, colorize each from every reference, write results.

Bad targets (unreadable, or whose results cannot be written) are skipped and summarised; a bad
reference or an unwritable --out stops the run before any work, since every target would fail
the same way. Every file is written atomically; `cli._outputs` names them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from chromaref.cli._outputs import (
    OutputClaims,
    Target,
    discover_targets,
    writable_folder,
    write_error,
)
from chromaref.platform.color import gray_from_l, tensor_to_image
from chromaref.platform.colorizers import PreparedImage
from chromaref.platform.debug import correspondence_images
from chromaref.platform.errors import (
    ChromarefError,
    ConfigError,
    IndexFileError,
    IndexMismatchError,
)
from chromaref.platform.grid import make_grid
from chromaref.platform.images import LoadedImage, load_image, save_image
from chromaref.platform.pipeline import ColorizationPipeline

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a run did: files really written, targets skipped with why, and renamed targets."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[Target] = field(default_factory=list)  # named by more than their stem
    targets: int = 0


def reference_labels(references: Sequence[Path]) -> list[str]:
    """Short names that tell references apart in file names, even when stems repeat."""
    stems = [p.stem for p in references]
    if len(set(stems)) == len(stems):
        return [f"ref-{s}" for s in stems]
    return [f"ref{i + 1}-{s}" for i, s in enumerate(stems)]


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


@dataclass(frozen=True)
class Reference:
    """A reference ready for colorizing: its label in file names, prepared form and pixels."""

    label: str
    prepared: PreparedImage
    rgb: np.ndarray


ReferenceSource = Callable[[LoadedImage], list[Reference]]


def fixed_references(pipeline: ColorizationPipeline, paths: Sequence[Path]) -> ReferenceSource:
    """The same user-given references for every target, loaded and checked up front."""
    references = []
    for path, label in zip(paths, reference_labels(paths), strict=True):
        image = load_image(path)
        prepared = pipeline.prepare(image, name=path.stem)
        pipeline.check_reference(prepared)
        references.append(Reference(label, prepared, image.rgb))
    return lambda _target: references


def run_colorize(
    pipeline: ColorizationPipeline,
    inputs: Sequence[Path],
    references_for: ReferenceSource,
    out: Path,
    *,
    fmt: str,
    debug: bool,
    console: Console,
    progress: bool,
    protected: Sequence[Path] = (),
) -> RunSummary:
    """Colorize every target from its references; returns what was written and what failed.

    A target that cannot be read, colorized or written is skipped and the run goes on.
    `protected` files (e.g. the references) are never overwritten, like the targets.

    Raises:
        ConfigError: no images in `inputs`.
        FileError: `out` cannot be made or written to.
        IndexFileError, IndexMismatchError: the index behind `references_for` is damaged.
    """
    targets = discover_targets(inputs, out)
    if not targets:
        raise ConfigError(f"no images found in {', '.join(map(str, inputs))}")
    writable_folder(out)
    claims = OutputClaims(out, [*(t.path for t in targets), *protected])
    summary = RunSummary(targets=len(targets))
    summary.renamed = [t for t in targets if t.key != t.path.stem]
    with _progress(console, progress) as bar:
        task = bar.add_task("colorizing", total=len(targets))
        for target in targets:
            try:
                _colorize_one(
                    pipeline, target, references_for, out, fmt, debug, claims, summary.written
                )
            except (IndexFileError, IndexMismatchError):
                raise  # a damaged index fails every target alike: stop with its one line
            except ChromarefError as exc:
                summary.failed.append((str(target.path), str(exc)))
                logger.info("skipped %s: %s", target.path, exc)  # the summary lists it
            bar.advance(task)
    return summary


def _colorize_one(
    pipeline: ColorizationPipeline,
    target: Target,
    references_for: ReferenceSource,
    out: Path,
    fmt: str,
    debug: bool,
    claims: OutputClaims,
    written: list[Path],
) -> None:
    """Colorize `target` from each of its references; append each file to `written` as it is
    written, so a later failure still leaves an exact list."""
    image = load_image(target.path)
    prepared = pipeline.prepare(image, name=target.path.stem)
    references = references_for(image)
    paths = [target.result(out, ref.label, fmt) for ref in references]
    grid_path = target.grid(out, fmt)
    folders = [target.debug_folder(out, ref.label) for ref in references] if debug else []
    claims.claim(target, [*paths, grid_path], folders)
    results = [
        pipeline.colorize(prepared, ref.prepared, keep_correspondence=debug) for ref in references
    ]
    for result, path in zip(results, paths, strict=True):
        written.append(_save(result.rgb, path, fmt))
    gray = tensor_to_image(gray_from_l(prepared.l_full).expand(-1, 3, -1, -1).cpu())
    rows = [[gray, ref.rgb, r.rgb] for ref, r in zip(references, results, strict=True)]
    labels = [["input", ref.prepared.name, f"result ({ref.label})"] for ref in references]
    written.append(_save(make_grid(rows, labels=labels), grid_path, fmt))
    for folder, result in zip(folders, results, strict=False):
        for name, picture in correspondence_images(prepared, result.correspondence).items():
            written.append(_save(picture, folder / f"{name}.png", "png"))


def _save(rgb: np.ndarray, path: Path, fmt: str) -> Path:
    """`save_image`, with a file system's refusal as a `FileError` that skips only this target."""
    try:
        return save_image(rgb, path, format=fmt)
    except OSError as exc:
        raise write_error(path, exc) from None
