"""Training pairs: which photos train, which validate, and what each sample's reference is.

A sample is a target (a random square crop of a color photo at the working size) and a
reference for one of the two branches that share ColorNet's weights (PAPER.md sections 2, 4.3):

* chrominance branch: the reference is the target itself, cropped, maybe mirrored and bent
  by a smooth random warp, so its colors are the truth's but no pixel can be copied in place;
  the loss compares ab with the truth;
* perceptual branch: the reference is another photo: a retrieved neighbour from an index when
  one is given (sometimes a random photo anyway, as an unrelated reference), else a random
  photo of the training split; the loss judges the result through a frozen backbone.

Everything random is drawn from `random.Random(f"{seed}:{epoch}:{position}")`, so a sample is
the same on every worker, every restart and every resume. Photos are checked once before
training (`scan_items`): unreadable, gray and duplicate files are skipped and counted. The
split is by content hash, so it is stable when the corpus grows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from chromaref.platform.color import mean_chroma
from chromaref.platform.errors import ChromarefError, ConfigError, FileError
from chromaref.platform.images import load_image
from chromaref.retrieval.corpus import CorpusItem, parse_uri, read_bytes
from chromaref.retrieval.storage import locate
from chromaref.training.config import DataConfig

logger = logging.getLogger(__name__)

CHROMA, PERCEPTUAL = "chroma", "perceptual"
MIN_PHOTO_SIDE = 32
_DECODE_OVERSAMPLE = 2  # photos are kept at up to twice the working size before cropping


@dataclass(frozen=True)
class Photo:
    """A usable training photo: where it is, its class label and the SHA-1 of its bytes."""

    id: str
    uri: str
    label: str | None
    sha1: str


@dataclass
class Dataset:
    """The photos of one run: split, skipped files and retrieved references."""

    source: str
    listed: int
    train: list[Photo]
    val: list[Photo]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    neighbours: dict[str, list[str]] = field(default_factory=dict)  # photo id -> reference uris
    index: str | None = None

    def summary(self) -> dict[str, Any]:
        """Counts and sources for MLflow and the model file (the file lists go separately)."""
        reasons = Counter(reason.split(" (")[0] for _, reason in self.skipped)
        labels = Counter(p.label for p in self.train + self.val if p.label is not None)
        return {
            "corpus": self.source,
            "listed": self.listed,
            "usable": len(self.train) + len(self.val),
            "train": len(self.train),
            "val": len(self.val),
            "skipped": len(self.skipped),
            "skipped_by_reason": dict(reasons),
            "labels": len(labels),
            "index": self.index,
            "retrieved_references": sum(len(v) for v in self.neighbours.values()),
            "split_sha1": split_fingerprint(self.train, self.val),
        }


# ---------------------------------------------------------------------------- photos


def load_photo(uri: str, *, max_short_side: int | None = None) -> np.ndarray:
    """Decode a corpus image as (H, W, 3) uint8, shrunk so its short side is at most
    `max_short_side` (cropping a huge photo down to 256 px needs no more pixels than that)."""
    rgb = load_image(read_bytes(uri), name=uri).rgb
    short = min(rgb.shape[:2])
    if max_short_side and short > max_short_side:
        image = Image.fromarray(rgb)
        scale = max_short_side / short
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        rgb = np.asarray(image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    return rgb


def scan_items(items: Sequence[CorpusItem], min_chroma: float) -> list[Photo | tuple[str, str]]:
    """Check each item once: a `Photo`, or `(uri, reason)` for a file training cannot use
    (unreadable, too small, gray). Runs in Ray tasks over chunks of a large corpus."""
    results: list[Photo | tuple[str, str]] = []
    for item in items:
        try:
            data = read_bytes(item.uri)
            rgb = load_image(data, name=item.uri).rgb
        except (ChromarefError, OSError) as exc:
            results.append((item.uri, f"unreadable ({exc})"))
            continue
        if min(rgb.shape[:2]) < MIN_PHOTO_SIDE:
            results.append((item.uri, f"too small ({rgb.shape[1]}x{rgb.shape[0]} px)"))
        elif mean_chroma(rgb) < min_chroma:
            results.append((item.uri, "gray (no colors to learn from)"))
        else:
            results.append(Photo(item.id, item.uri, item.label, hashlib.sha1(data).hexdigest()))
    return results


def drop_duplicates(
    scanned: Sequence[Photo | tuple[str, str]],
) -> tuple[list[Photo], list[tuple[str, str]]]:
    """(photos, skipped): byte-identical copies are skipped (the first in corpus order stays),
    so a photo never serves as its own 'other' reference or leaks across the split."""
    photos, skipped, first = [], [], {}
    for entry in scanned:
        if isinstance(entry, tuple):
            skipped.append(entry)
        elif entry.sha1 in first:
            skipped.append((entry.uri, f"duplicate (of {first[entry.sha1]})"))
        else:
            first[entry.sha1] = entry.uri
            photos.append(entry)
    return photos, skipped


def _unit_hash(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / 16**12


def split_photos(
    photos: Sequence[Photo],
    *,
    val_fraction: float,
    seed: int,
    assigned: Mapping[str, str] | None = None,
) -> tuple[list[Photo], list[Photo]]:
    """(train, val) by a hash of each photo's content and the seed: deterministic, and a photo
    stays on its side when others are added. At least one validation photo when asked for one.
    `assigned` (uri -> "train" or "val", from the corpus's own split.json) overrides the hash:
    a data set that keeps related photos on one side stays split that way.

    Raises:
        ConfigError: fewer than 2 training photos would remain.
    """
    assigned = assigned or {}
    keys = {p.id: _unit_hash(f"{seed}:{p.sha1}") for p in photos}
    val = [
        p
        for p in photos
        if assigned.get(p.uri) == "val" or (p.uri not in assigned and keys[p.id] < val_fraction)
    ]
    if val_fraction > 0 and not val and len(photos) > 2:
        val = [min(photos, key=lambda p: keys[p.id])]
    held = {p.id for p in val}
    train = [p for p in photos if p.id not in held]
    if len(train) < 2:
        raise ConfigError(
            f"need at least 2 usable color photos to train on, found {len(train)} "
            f"(plus {len(val)} held out); add photos to the corpus"
        )
    return train, val


SPLIT_FILE = "split.json"
MAX_SPLIT_BYTES = 64 << 20  # a listing of millions of files, not more


def assigned_split(corpus: str) -> dict[str, str]:
    """uri -> "train"/"val" from `CORPUS/split.json` when the corpus has one (the format
    `python -m benchmarks.datasets training` writes: {"files": [{"file", "split"}, ...]}), so
    training keeps the data set's own split; {} for any other corpus."""
    root = locate(corpus)
    manifest = root.child(f"{root.path.rstrip('/')}/{SPLIT_FILE}")
    if root.kind() != "dir" or manifest.kind() != "file":
        return {}
    base = root.path.rstrip("/")
    try:
        entries = json.loads(manifest.read(limit=MAX_SPLIT_BYTES))["files"]
        assigned = {str(root.child(f"{base}/{e['file']}")): e["split"] for e in entries}
    except (ValueError, KeyError, TypeError) as exc:
        raise FileError(manifest, f"not a training split file ({exc})") from None
    unknown = sorted(set(assigned.values()) - {"train", "val"})
    if unknown:  # a "test" photo must never end up in training
        raise FileError(manifest, f"splits must be train or val, found {', '.join(unknown)}")
    return assigned


def split_fingerprint(train: Sequence[Photo], val: Sequence[Photo]) -> str:
    """SHA-1 of the two file lists: two runs trained on the same split share it."""
    text = "\n".join(["train", *sorted(p.uri for p in train), "val", *sorted(p.uri for p in val)])
    return hashlib.sha1(text.encode()).hexdigest()


def retrieved_neighbours(
    index_path: str, targets: Sequence[Photo], *, held_out: Sequence[Photo], k: int
) -> dict[str, list[str]]:
    """Photo id -> the uris of its k best references in the index, never the photo itself
    (by id or content) nor a held-out photo, and only references the index lets us read
    (under its corpus root: `Index.load_reference`'s rule, checked here once).

    Raises:
        ConfigError, IndexFileError, IndexMismatchError: the index cannot be used.
    """
    from chromaref.retrieval.index import Index

    index = Index.open(index_path)
    index.check_references()
    sha1_of = dict(zip(index.rows["id"], index.rows["sha1"], strict=True))
    banned = {p.sha1 for p in held_out}

    def readable(uri: str) -> bool:
        try:
            index.corpus.resolve(parse_uri(uri)[1])
        except FileError:
            return False
        return True

    table = {}
    for photo in targets:
        try:
            rgb = load_photo(photo.uri, max_short_side=256)
        except ChromarefError as exc:
            logger.warning("no references for %s: %s", photo.uri, exc)
            continue
        hits = index.search(rgb, k + len(banned) + 1, exclude_ids=frozenset({photo.id}))
        uris = [
            h.uri
            for h in hits
            if sha1_of.get(h.id) not in banned | {photo.sha1} and readable(h.uri)
        ]
        table[photo.id] = uris[:k]
    return table


# ---------------------------------------------------------------------------- augmentation


def random_square_crop(
    rgb: np.ndarray, rng: random.Random, size: int, *, min_crop: float
) -> np.ndarray:
    """A random square of side in [min_crop, 1] x the short side, mirrored half the time,
    resized to size x size."""
    height, width = rgb.shape[:2]
    side = max(1, round(min(height, width) * rng.uniform(min_crop, 1.0)))
    top, left = rng.randint(0, height - side), rng.randint(0, width - side)
    image = Image.fromarray(rgb[top : top + side, left : left + side])
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0))


def smooth_warp(rgb: np.ndarray, rng: random.Random, strength: float) -> np.ndarray:
    """Bend an image with a smooth random displacement field (4 x 4 control points, bicubic
    in between, a thin-plate-like warp); `strength` is the largest shift as a share of the side.
    """
    if strength <= 0:
        return rgb
    height, width = rgb.shape[:2]
    control = torch.tensor([[rng.uniform(-1, 1) for _ in range(32)]], dtype=torch.float32).reshape(
        1, 2, 4, 4
    ) * (2 * strength)
    flow = F.interpolate(control, size=(height, width), mode="bicubic", align_corners=True)
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij"
    )
    grid = torch.stack([xs, ys], dim=-1)[None] + flow.permute(0, 2, 3, 1)
    image = torch.tensor(rgb).permute(2, 0, 1)[None].float()
    warped = F.grid_sample(
        image, grid, mode="bilinear", padding_mode="reflection", align_corners=True
    )
    return warped[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _random_view(rgb: np.ndarray, rng: random.Random, *, min_share: float) -> Image.Image:
    """A random crop keeping `min_share`-100% of each side, mirrored half the time."""
    height, width = rgb.shape[:2]
    crop_h, crop_w = (max(1, round(side * rng.uniform(min_share, 1.0))) for side in (height, width))
    top, left = rng.randint(0, height - crop_h), rng.randint(0, width - crop_w)
    image = Image.fromarray(rgb[top : top + crop_h, left : left + crop_w])
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


def self_reference(target: np.ndarray, rng: random.Random, *, warp_strength: float) -> np.ndarray:
    """The chrominance branch's reference: the target re-cropped (60-100% of each side, back
    to its size), mirrored half the time, then warped. Same colors, no pixel in place."""
    height, width = target.shape[:2]
    image = _random_view(target, rng, min_share=0.6)
    view = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
    return smooth_warp(view, rng, warp_strength)


def other_reference(rgb: np.ndarray, rng: random.Random, size: int) -> np.ndarray:
    """A perceptual-branch reference: a random 70-100% crop of another photo, mirrored half
    the time, with its long side at `size` (the working size the pipeline would use)."""
    image = _random_view(rgb, rng, min_share=0.7)
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image)


# ---------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class Pair:
    """One training or validation sample, before the similarity sub-net sees it."""

    target: np.ndarray  # (S, S, 3) uint8, the truth
    reference: np.ndarray  # (h, w, 3) uint8
    branch: str  # CHROMA or PERCEPTUAL
    target_uri: str
    reference_uri: str
    reference_kind: str  # "self", "retrieved" or "random"


class PairMaker:
    """Builds `Pair`s for a list of target photos; references come from `pool` (the training
    photos) or the retrieved `neighbours`."""

    def __init__(
        self,
        targets: Sequence[Photo],
        pool: Sequence[Photo],
        neighbours: dict[str, list[str]],
        config: DataConfig,
        size: int,
    ) -> None:
        self.targets, self.pool, self.neighbours = list(targets), list(pool), neighbours
        self.config, self.size = config, size

    def _load(self, uri: str) -> np.ndarray:
        return load_photo(uri, max_short_side=self.size * _DECODE_OVERSAMPLE)

    def pair(self, index: int, rng: random.Random, branch: str | None = None) -> Pair:
        """The sample for target `index`; the branch is drawn unless given."""
        photo = self.targets[index]
        target = random_square_crop(
            self._load(photo.uri), rng, self.size, min_crop=self.config.min_crop
        )
        if branch is None:
            branch = CHROMA if rng.random() < self.config.chroma_probability else PERCEPTUAL
        if branch == CHROMA:
            reference = self_reference(target, rng, warp_strength=self.config.warp_strength)
            return Pair(target, reference, branch, photo.uri, photo.uri, "self")
        retrieved = self.neighbours.get(photo.id)
        if retrieved and rng.random() >= self.config.unrelated_probability:
            uri, kind = rng.choice(retrieved), "retrieved"
        else:
            uri, kind = self._other(photo, rng).uri, "random"
        reference = other_reference(self._load(uri), rng, self.size)
        return Pair(target, reference, branch, photo.uri, uri, kind)

    def _other(self, photo: Photo, rng: random.Random) -> Photo:
        while (other := rng.choice(self.pool)).id == photo.id:
            pass
        return other


def sample_rng(seed: int, *parts: object) -> random.Random:
    """The generator of one sample: a function of the seed and the sample's place only."""
    return random.Random(":".join(map(str, (seed, *parts))))


class PairDataset(torch.utils.data.Dataset):
    """Map-style dataset over keys (epoch, position, photo index), for a DataLoader with a
    `RankBatches` batch sampler. A photo that fails to load now (it passed the scan) is
    replaced by the next one, with a warning, instead of stopping every worker."""

    def __init__(self, maker: PairMaker, seed: int) -> None:
        self.maker, self.seed = maker, seed

    def __len__(self) -> int:
        return len(self.maker.targets)

    def __getitem__(self, key: tuple[int, int, int]) -> Pair:
        epoch, position, index = key
        rng = sample_rng(self.seed, epoch, position)
        for attempt in range(len(self.maker.targets)):
            try:
                return self.maker.pair((index + attempt) % len(self.maker.targets), rng)
            except ChromarefError as exc:
                logger.warning("skipping a training photo that no longer loads: %s", exc)
        raise ConfigError("no training photo can be loaded any more")


class RankBatches(torch.utils.data.Sampler):
    """This rank's batches of keys from `start_step` to `total_steps`.

    Each epoch is a seeded permutation of the photos; step k of an epoch gives rank r the
    slots [(k * world + r) * batch, ... + batch), wrapping around, so every rank gets full
    batches and the same number of them (ranks must report equally often)."""

    def __init__(
        self,
        count: int,
        *,
        batch_size: int,
        rank: int,
        world: int,
        seed: int,
        start_step: int,
        total_steps: int,
    ) -> None:
        self.count, self.batch_size, self.rank, self.world = count, batch_size, rank, world
        self.seed, self.start_step, self.total_steps = seed, start_step, total_steps

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.count, self.batch_size, self.world)

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        per_epoch = self.steps_per_epoch
        order, order_epoch = list(range(self.count)), None
        for step in range(self.start_step, self.total_steps):
            epoch, k = divmod(step, per_epoch)
            if epoch != order_epoch:
                order, order_epoch = list(range(self.count)), epoch
                random.Random(f"{self.seed}:order:{epoch}").shuffle(order)
            first = (k * self.world + self.rank) * self.batch_size
            positions = [(first + j) % self.count for j in range(self.batch_size)]
            yield [(epoch, p, order[p]) for p in positions]


def steps_per_epoch(count: int, batch_size: int, world: int) -> int:
    """Optimizer steps for every photo to be seen once across `world` workers."""
    return max(1, math.ceil(count / (batch_size * world)))


def collate_pairs(pairs: list[Pair]) -> list[Pair]:
    """Pairs stay a list: references have different sizes, and the similarity sub-net takes
    them one by one."""
    return pairs
