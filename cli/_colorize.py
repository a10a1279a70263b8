"""The `colorize` job: discover targets, colorize each from every reference, write results.

Bad targets (unreadable, or whose results cannot be written) are skipped and summarised; a bad
reference or an unwritable --out stops the run before any work, since every target would fail
the same way; a damaged index found mid-run stops it, and what was written is still reported.
Every file is written atomically; `cli._outputs` names them.

A reference is kept as what colorizing and the grid read, never at full resolution: its working
copy and features (`prepare(..., full_l=False)`) and a picture no larger than a grid cell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from chromaref.cli._common import writable_folder
from chromaref.cli._outputs import (
    OutputClaims,
    Target,
    discover_targets,
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
from chromaref.platform.grid import MAX_CELL_HEIGHT, MAX_CELL_WIDTH, make_grid
from chromaref.platform.images import ImageInput, LoadedImage, as_rgb, load_image, save_image
from chromaref.platform.pipeline import ColorizationPipeline

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a run did: files really written, targets skipped with why, and renamed targets;
    `stopped` is the error that ended it early (a damaged index), for the caller to raise once
    the files written before it are reported."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[Target] = field(default_factory=list)  # named by more than their stem
    targets: int = 0
    done: int = 0  # targets colorized
    stopped: ChromarefError | None = None


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
    """A reference ready for colorizing: its label in file names, prepared form (working size
    only) and its picture for the grid (see `grid_picture`)."""

    label: str
    prepared: PreparedImage
    rgb: np.ndarray


ReferenceSource = Callable[[LoadedImage], list[Reference]]


def grid_picture(rgb: np.ndarray) -> np.ndarray:
    """`rgb`, shrunk to the largest cell a grid can show (`MAX_CELL_HEIGHT` high,
    `MAX_CELL_WIDTH` wide) when it is bigger: the grid never shows more, so a reference kept
    for it costs at most a few MB, not 3 B per pixel of the photo."""
    height, width = rgb.shape[:2]
    if height <= MAX_CELL_HEIGHT and width <= MAX_CELL_WIDTH:
        return rgb
    # one unlabelled cell is the whole grid; rounding down keeps it within the width cap too
    return make_grid(
        [[rgb]], cell_height=max(1, min(MAX_CELL_HEIGHT, height * MAX_CELL_WIDTH // width))
    )


def prepare_reference(
    pipeline: ColorizationPipeline, image: ImageInput, *, name: str, label: str = ""
) -> Reference:
    """A reference prepared and checked, keeping only what colorizing and the grid read.

    Raises:
        UnusableReferenceError: it has no color to transfer.
    """
    prepared = pipeline.prepare(image, name=name, full_l=False)
    pipeline.check_reference(prepared)
    return Reference(label, prepared, grid_picture(as_rgb(image)))


def fixed_references(pipeline: ColorizationPipeline, paths: Sequence[Path]) -> ReferenceSource:
    """The same user-given references for every target, loaded and checked up front."""
    references = [
        prepare_reference(pipeline, load_image(path), name=path.stem, label=label)
        for path, label in zip(paths, reference_labels(paths), strict=True)
    ]
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
    `protected` files (e.g. the references) are never overwritten, like the targets. A damaged
    index (IndexFileError, IndexMismatchError from `references_for`) fails every target alike:
    the run stops there, with the error in `summary.stopped`.

    Raises:
        ConfigError: no images in `inputs`.
        FileError: `out` cannot be made or written to.
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
            except (IndexFileError, IndexMismatchError) as exc:
                summary.stopped = exc
                break
            except ChromarefError as exc:
                summary.failed.append((str(target.path), str(exc)))
                logger.info("skipped %s: %s", target.path, exc)  # the summary lists it
            else:
                summary.done += 1
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
