"""Training pairs on real photos: the self reference, skipped files, the split, rank batches."""

from __future__ import annotations

import numpy as np
import pytest

from chromaref.platform.color import lab_image
from chromaref.platform.errors import FileError
from chromaref.platform.metrics import ab_histogram_distance
from chromaref.retrieval.corpus import list_corpus
from chromaref.training.config import DataConfig
from chromaref.training.pairs import (
    CHROMA,
    PERCEPTUAL,
    SPLIT_FILE,
    PairMaker,
    Photo,
    RankBatches,
    assigned_split,
    drop_duplicates,
    random_square_crop,
    sample_rng,
    scan_items,
    self_reference,
    split_photos,
)


def test_self_reference_shares_the_colors_but_no_pixel_in_place(photo_rgb):
    rng = sample_rng(0, 0, 0)
    target = random_square_crop(photo_rgb("baboon"), rng, 128, min_crop=0.6)
    reference = self_reference(target, rng, warp_strength=0.06)
    assert reference.shape == target.shape
    moved = np.abs(reference.astype(int) - target.astype(int)).mean()
    assert moved > 10  # not a copy: the network cannot read the answer off in place
    same = ab_histogram_distance(lab_image(target), lab_image(reference))
    other = ab_histogram_distance(lab_image(target), lab_image(photo_rgb("coffee")[:128, :128]))
    assert same < 0.3 and same < other / 2  # but the same palette


def test_corrupt_gray_and_duplicate_files_are_skipped_and_counted(train_corpus, tmp_path):
    items = list_corpus(train_corpus)
    photos, skipped = drop_duplicates(scan_items(items, min_chroma=2.0))
    reasons = {uri.rsplit("/", 1)[-1]: reason for uri, reason in skipped}
    assert set(reasons) == {"gray.png", "corrupt.jpg"}
    assert reasons["gray.png"].startswith("gray") and reasons["corrupt.jpg"].startswith(
        "unreadable"
    )
    assert len(photos) == len(items) - 2
    twice = drop_duplicates([*photos, photos[0]])
    assert len(twice[0]) == len(photos) and twice[1][0][1].startswith("duplicate")


def _photos(n: int) -> list[Photo]:
    return [Photo(id=f"id{i}", uri=f"/p/{i}.jpg", label=None, sha1=f"{i:040x}") for i in range(n)]


def test_split_is_deterministic_and_stable_when_photos_are_added():
    photos = _photos(200)
    train, val = split_photos(photos, val_fraction=0.1, seed=0)
    assert (train, val) == split_photos(photos, val_fraction=0.1, seed=0)
    assert 8 <= len(val) <= 35 and not {p.id for p in val} & {p.id for p in train}
    more_train, more_val = split_photos([*photos, *_photos(260)[200:]], val_fraction=0.1, seed=0)
    assert set(val) <= set(more_val) and set(train) <= set(more_train)
    assert split_photos(photos, val_fraction=0.1, seed=1)[1] != val  # the seed matters


def test_rank_batches_cover_each_epoch_once_and_resume_mid_run():
    def batches(rank: int, start: int = 0) -> list:
        return list(
            RankBatches(
                10, batch_size=2, rank=rank, world=2, seed=3, start_step=start, total_steps=6
            )
        )

    rank0, rank1 = batches(0), batches(1)
    assert len(rank0) == len(rank1) == 6  # every rank steps (and reports) equally often
    first_epoch = [key[2] for batch in rank0[:3] + rank1[:3] for key in batch]
    assert sorted(first_epoch[:10]) == list(range(10))  # 3 steps x 2 ranks x 2 = 12 slots
    assert batches(0, start=4) == rank0[4:]  # a resumed run sees the same samples


def test_pairs_are_reproducible_and_branch_as_asked(train_corpus):
    photos, _ = drop_duplicates(scan_items(list_corpus(train_corpus), min_chroma=2.0))
    maker = PairMaker(photos, photos, {}, DataConfig(), 64)
    first = maker.pair(0, sample_rng(0, 1, 2), CHROMA)
    again = maker.pair(0, sample_rng(0, 1, 2), CHROMA)
    assert np.array_equal(first.target, again.target)
    assert np.array_equal(first.reference, again.reference)
    assert first.target.shape == (64, 64, 3) and first.reference_kind == "self"
    other = maker.pair(0, sample_rng(0, 1, 3), PERCEPTUAL)
    assert other.reference_kind == "random" and other.reference_uri != other.target_uri
    assert max(other.reference.shape[:2]) == 64


@pytest.mark.slow
def test_retrieved_references_exclude_the_photo_itself_and_held_out_photos(train_corpus, tmp_path):
    from chromaref.retrieval.build import BuildConfig, build_index
    from chromaref.training.pairs import retrieved_neighbours

    index = tmp_path / "index"
    build_index(train_corpus, index, config=BuildConfig(runner="local"))
    photos, _ = drop_duplicates(scan_items(list_corpus(train_corpus), min_chroma=2.0))
    train, val = photos[:-2], photos[-2:]
    table = retrieved_neighbours(str(index), train, held_out=val, k=3)
    assert set(table) == {p.id for p in train}
    held_out = {p.uri for p in val}
    for photo in train:
        assert len(table[photo.id]) == 3
        assert photo.uri not in table[photo.id] and not held_out & set(table[photo.id])
    maker = PairMaker(train, train, table, DataConfig(unrelated_probability=0.0), 64)
    pair = maker.pair(0, sample_rng(0, 0, 0), PERCEPTUAL)
    assert pair.reference_kind == "retrieved" and pair.reference_uri in table[train[0].id]


def test_a_corpus_split_file_decides_each_listed_photo(train_corpus, tmp_path):
    import json
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(train_corpus, corpus)
    assert assigned_split(str(corpus)) == {}  # no split.json: the hash decides
    items = list_corpus(corpus)
    photos, _ = drop_duplicates(scan_items(items, min_chroma=2.0))
    _, hashed_val = split_photos(photos, val_fraction=0.5, seed=0)
    chosen = photos[0] if photos[0] not in hashed_val else photos[1]  # a hashed train photo
    entries = [{"file": chosen.uri.rsplit("/", 1)[-1], "split": "val"}]
    entries += [{"file": p.uri.rsplit("/", 1)[-1], "split": "train"} for p in hashed_val]
    (corpus / SPLIT_FILE).write_text(json.dumps({"files": entries}))
    assigned = assigned_split(str(corpus))
    train, val = split_photos(photos, val_fraction=0.5, seed=0, assigned=assigned)
    assert len(train) + len(val) == len(photos)
    assert chosen in val and not set(hashed_val) & set(val)
    entries[0]["split"] = "test"
    (corpus / SPLIT_FILE).write_text(json.dumps({"files": entries}))
    with pytest.raises(FileError, match="train or val, found test"):
        assigned_split(str(corpus))
    (corpus / SPLIT_FILE).write_text('{"not": "a split"}')
    with pytest.raises(FileError, match=r"split\.json"):
        assigned_split(str(corpus))
