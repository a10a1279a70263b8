"""`colorize --auto`: references recommended by an index instead of given by the user.

An index may come from elsewhere, so its references are read under its rules
(`chromaref.retrieval.confine`): an index none of whose references may be read stops the run
before any work (exit 2); a single refused or unreadable reference is skipped with a warning
line and the target is colorized from the others; a target left with none fails like any
other bad target (listed at the end, exit 1).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chromaref.cli._colorize import Reference, ReferenceSource
from chromaref.platform.errors import ChromarefError, ConfigError
from chromaref.platform.images import LoadedImage
from chromaref.platform.pipeline import ColorizationPipeline

if TYPE_CHECKING:
    from chromaref.retrieval.index import Index, SearchHit

logger = logging.getLogger(__name__)


def auto_references(pipeline: ColorizationPipeline, index: Index, top: int) -> ReferenceSource:
    """Per target: the index's `top` usable hits, best first, labelled `auto<rank>-<name>`.

    Prepared references are cached by id, so a folder of similar photos reuses them; a
    refused one is remembered too, and warned about once.

    Raises:
        IndexFileError: the index can supply no reference at all (see `Index.check_references`).
    """
    index.check_references()
    cache: dict[str, Reference] = {}
    refused: dict[str, str] = {}

    def prepared(hit: SearchHit) -> Reference | None:
        if hit.id not in cache and hit.id not in refused:
            try:
                rgb = index.load_reference(hit)
                cache[hit.id] = Reference("", pipeline.prepare(rgb, name=hit.name), rgb)
            except (ChromarefError, OSError) as exc:
                refused[hit.id] = str(exc)
                logger.warning("skipped reference: %s", exc)
        return cache.get(hit.id)

    def references_for(target: LoadedImage) -> list[Reference]:
        hits = index.search(target.rgb, top)
        references = [
            Reference(f"auto{rank}-{hit.name}", ref.prepared, ref.rgb)
            for rank, hit in enumerate(hits, start=1)
            if (ref := prepared(hit)) is not None
        ]
        if not references:
            reason = refused.get(hits[0].id, "") if hits else "the index returned no hit"
            raise ConfigError(f"no usable reference among the index's top {top}: {reason}")
        return references

    return references_for
