"""`colorize --auto`: references recommended by an index instead of given by the user.

An index may come from elsewhere, so its references are read under its rules
(`chromaref.retrieval.confine`): an index none of whose references may be read stops the run
before any work (exit 2); a single refused, unreadable or gray reference is skipped with a
warning line and the target is colorized from the others; a target left with none fails like
any other bad target (listed at the end, exit 1).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from chromaref.cli._colorize import Reference, prepare_reference
from chromaref.platform.errors import ChromarefError, ConfigError
from chromaref.platform.images import LoadedImage
from chromaref.platform.pipeline import ColorizationPipeline

if TYPE_CHECKING:
    from chromaref.retrieval.index import Index, SearchHit

logger = logging.getLogger(__name__)

# Prepared references kept between targets. At least `top`, so consecutive targets with the
# same hits (a folder of similar photos) prepare none again; a few more so that hits shared
# by targets a little apart survive. Each costs its working copy, features and grid picture
# (a few MB), so the run's memory no longer grows with the number of distinct hits.
MIN_CACHED = 8


class AutoReferences:
    """Per target: the index's `top` usable hits, best first, labelled `auto<rank>-<name>`.

    Prepared references are kept in an LRU of `capacity` entries; a refused one is
    remembered (only its reason) and warned about once.

    Raises (at construction):
        IndexFileError: the index can supply no reference at all (see `Index.check_references`).
    """

    def __init__(self, pipeline: ColorizationPipeline, index: Index, top: int) -> None:
        index.check_references()
        if top > len(index):
            logger.warning(
                "--top %d, but the index holds %d references: as many results each", top, len(index)
            )
        self.pipeline, self.index, self.top = pipeline, index, top
        self.capacity = max(top, MIN_CACHED)
        self.cache: OrderedDict[str, Reference] = OrderedDict()
        self.refused: dict[str, str] = {}

    def __call__(self, target: LoadedImage) -> list[Reference]:
        hits = self.index.search(target.rgb, self.top)
        references = [
            Reference(f"auto{rank}-{hit.name}", ref.prepared, ref.rgb)
            for rank, hit in enumerate(hits, start=1)
            if (ref := self._prepared(hit)) is not None
        ]
        if not references:
            reason = self.refused.get(hits[0].id, "") if hits else "the index returned no hit"
            raise ConfigError(f"no usable reference among the index's top {self.top}: {reason}")
        return references

    def _prepared(self, hit: SearchHit) -> Reference | None:
        if hit.id in self.refused:
            return None
        if hit.id in self.cache:
            self.cache.move_to_end(hit.id)
            return self.cache[hit.id]
        try:
            rgb = self.index.load_reference(hit)
            reference = prepare_reference(self.pipeline, rgb, name=hit.name)
        except (ChromarefError, OSError) as exc:
            self.refused[hit.id] = str(exc)
            logger.warning("skipped reference: %s", exc)
            return None
        self.cache[hit.id] = reference
        if len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
        return reference


def auto_references(pipeline: ColorizationPipeline, index: Index, top: int) -> AutoReferences:
    """The `ReferenceSource` of `colorize --auto` (see `AutoReferences`)."""
    return AutoReferences(pipeline, index, top)
