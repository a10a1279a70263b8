"""Index folders are untrusted input: what a build may replace, what a search may read, and
how a damaged or crafted index is refused (one line, exit 2) instead of followed.

Crafted indexes are real index folders edited on disk; `_reseal` rewrites the manifest's
checksums afterwards, as an attacker (or a careless tool) would, so that the deeper checks
are the ones that must catch the problem.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from chromaref.cli.main import app
from chromaref.platform.errors import (
    ConfigError,
    FileError,
    ImageLoadError,
    IndexFileError,
    IndexMismatchError,
)
from chromaref.platform.files import sha256_file
from chromaref.platform.images import load_image
from chromaref.retrieval import store
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.confine import TRUSTED_ENV, CorpusRoot
from chromaref.retrieval.corpus import read_bytes
from chromaref.retrieval.index import Index, SearchHit

runner = CliRunner()
MAGENTA, CYAN = (255, 0, 255), (0, 255, 255)


# --- helpers -----------------------------------------------------------------------------------


def _reseal(index_dir: Path, **changes: object) -> None:
    """Rewrite the manifest's file checksums and sizes (and any `changes`) to match the disk."""
    path = index_dir / store.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"] = {n: store.file_entry(index_dir / n) for n in store.SEARCH_FILES}
    path.write_text(json.dumps({**manifest, **changes}))


def _set_uris(index_dir: Path, uris: dict[int, str]) -> None:
    """Point rows (by position) at other uris, then reseal."""
    table = pq.read_table(index_dir / store.ROWS)
    column = table["uri"].to_pylist()
    for row, uri in uris.items():
        column[row] = uri
    table = table.set_column(table.schema.get_field_index("uri"), "uri", pa.array(column))
    pq.write_table(table, index_dir / store.ROWS)
    _reseal(index_dir)


def _solid(path: Path, color: tuple[int, int, int]) -> Path:
    Image.new("RGB", (96, 64), color).save(path)
    return path


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    return lines[0]


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def crafted(corpus, local_index, tmp_path) -> tuple[Path, Path]:
    """A copy of the test index whose corpus is a private copy of the test corpus (so tests
    may add files and links to it): (index folder, corpus root)."""
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    index_dir = tmp_path / "index"
    shutil.copytree(local_index, index_dir)
    table = pq.read_table(index_dir / store.ROWS)
    old = str(corpus.resolve())
    uris = [u.replace(old, str(root.resolve())) for u in table["uri"].to_pylist()]
    table = table.set_column(table.schema.get_field_index("uri"), "uri", pa.array(uris))
    pq.write_table(table, index_dir / store.ROWS)
    _reseal(index_dir, corpus=str(root.resolve()))
    return index_dir, root


@pytest.fixture(scope="module")
def query(corpus, tmp_path_factory) -> tuple[Path, str]:
    """A gray query photo and the uri of its color original in the test corpus."""
    source = sorted((corpus / "food").glob("*.jpg"))[0]
    path = tmp_path_factory.mktemp("query") / "old.png"
    Image.open(source).convert("L").save(path)
    return path, str(source.resolve())


def _row_of(index_dir: Path, uri_suffix: str) -> int:
    uris = pq.read_table(index_dir / store.ROWS)["uri"].to_pylist()
    return next(n for n, u in enumerate(uris) if u.endswith(uri_suffix))


# --- the manifest contract ---------------------------------------------------------------------


def test_manifest_names_the_format_the_corpus_and_every_search_file(corpus, local_index):
    manifest = store.read_manifest(local_index)
    assert (manifest["format"], manifest["format_version"]) == (store.FORMAT, 2)
    assert manifest["corpus"] == str(corpus.resolve())
    assert sorted(manifest["files"]) == sorted(store.SEARCH_FILES)
    for name, entry in manifest["files"].items():
        path = local_index / name
        assert entry == {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    assert store.is_index(local_index)
    assert not store.is_index(corpus)
    rows = pq.read_table(local_index / store.ROWS)
    local = np.load(local_index / "local.npy")
    assert rows["digest_local"].to_numpy().tolist() == store.row_digests(local).tolist()


def test_an_old_format_index_is_refused_with_rebuild_and_may_be_replaced(local_index, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(local_index, old)
    manifest = json.loads((old / store.MANIFEST).read_text())
    for key in ("format", "files", "corpus"):
        del manifest[key]
    (old / store.MANIFEST).write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(IndexMismatchError, match="rebuild it"):
        Index.open(old)
    assert store.why_not_replaceable(old) is None  # `index build --out old` may rebuild it


# --- never deleting a user's folder ------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_build_never_replaces_a_folder_with_an_unrelated_manifest(corpus, tmp_path):
    pwa = tmp_path / "my-pwa"
    (pwa / "icons").mkdir(parents=True)
    (pwa / "manifest.json").write_text('{"name": "My App", "start_url": "/", "display": "x"}')
    (pwa / "index.html").write_text("<!doctype html><title>mine</title>")
    (pwa / "icons" / "icon.png").write_bytes(b"\x89PNG not really")
    lookalike = tmp_path / "lookalike"  # names the format and has the files, plus a user file
    lookalike.mkdir()
    (lookalike / "manifest.json").write_text(json.dumps({"format": store.FORMAT}))
    for name in store.SEARCH_FILES:
        (lookalike / name).write_bytes(b"x")
    (lookalike / "thesis.tex").write_text("years of work")
    for folder, why in ((pwa, 'does not say "format"'), (lookalike, "thesis.tex")):
        before = _snapshot(folder)
        result = _invoke("index", "build", str(corpus), "--out", str(folder), "--local", "-q")
        line = _one_error_line(result)
        assert "not a chromaref index" in line and why in line
        assert _snapshot(folder) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["lookalike", "my-pwa"]


def test_build_never_reuses_or_deletes_a_user_folder_named_like_its_staging(corpus, tmp_path):
    staging = tmp_path / "idx.building"  # a build stages into OUT.building
    staging.mkdir()
    (staging / "plan.json").write_text('{"not": "ours"}')  # would be "other settings"
    (staging / "notes.txt").write_text("mine")
    before = _snapshot(staging)
    result = _invoke("index", "build", str(corpus), "--out", str(tmp_path / "idx"), "--local", "-q")
    line = _one_error_line(result)
    assert str(staging) in line and "notes.txt" in line
    assert _snapshot(staging) == before and not (tmp_path / "idx").exists()


def test_swap_checks_the_old_folder_again_right_before_moving_it(local_index, tmp_path):
    staging, target = tmp_path / "new.building", tmp_path / "new"
    shutil.copytree(local_index, staging)
    shutil.copytree(local_index, target)
    (target / "notes.txt").write_text("added while the build ran")  # no longer provably ours
    before = _snapshot(target)
    with pytest.raises(ConfigError, match=r"notes\.txt"):
        store.swap_into_place(staging, target)
    assert _snapshot(target) == before and staging.is_dir()
    (target / "notes.txt").unlink()
    store.swap_into_place(staging, target)  # now it is an index: replaced, nothing left over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


# --- references only from the corpus -----------------------------------------------------------


def _hit(index: Index, row: int) -> SearchHit:
    return SearchHit(index.rows["id"][row], index.rows["uri"][row], None, 1.0, None, None, 1.0)


@pytest.mark.slow
def test_rows_outside_the_corpus_root_are_refused(crafted, tmp_path):
    index_dir, root = crafted
    secret = _solid(tmp_path / "secret.png", MAGENTA)
    (root / "food" / "link.png").symlink_to(secret)
    escapes = {
        str(secret): "outside the index's corpus root",
        f"{root.resolve()}/../secret.png": "'..'",
        f"{root.resolve()}/food/link.png": "through a symbolic link",
        f"tar://{secret}#0:100": "outside the index's corpus root",
        f"parquet://{secret}#0": "outside the index's corpus root",
        f"s3://bucket{secret}": "not on the filesystem of the corpus",
        "secret.png": "not an absolute path",
    }
    _set_uris(index_dir, dict(enumerate(escapes)))
    index = Index.open(index_dir)
    for row, (uri, why) in enumerate(escapes.items()):
        with pytest.raises(ImageLoadError, match=why) as refused:
            index.load_reference(_hit(index, row))
        assert str(refused.value).startswith(uri) and index.rows["id"][row] in str(refused.value)


@pytest.mark.slow
def test_colorize_auto_skips_a_refused_reference_and_never_shows_the_secret(
    crafted, query, tmp_path
):
    index_dir, root = crafted
    gray, original = query
    hits = Index.open(index_dir).search(load_image(gray).rgb, 2)
    assert hits[0].uri.endswith(Path(original).name)  # the crafted row will be the top hit
    secret = _solid(tmp_path / "secret.png", MAGENTA)
    allowed = _solid(root / "food" / "cyan.png", CYAN)
    first, second = (_row_of(index_dir, h.uri) for h in hits)
    _set_uris(index_dir, {first: str(secret), second: str(allowed)})
    out = tmp_path / "out"
    args = ("colorize", str(gray), "--auto", "--index", str(index_dir), "--top", "2", "-q")
    result = _invoke(*args, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (
        "skipped reference" in result.output and "outside the index's corpus root" in result.output
    )
    written = sorted(out.glob("*.png"))
    assert [p.name for p in written] == ["old__auto2-cyan.png", "old__grid.png"]
    pixels = np.concatenate(
        [np.asarray(Image.open(p).convert("RGB")).reshape(-1, 3) for p in written]
    )
    assert (pixels == CYAN).all(axis=1).any()  # the allowed reference is in the grid
    assert not (pixels == MAGENTA).all(axis=1).any()  # the secret never is

    only = _invoke(*args[:-3], "--top", "1", "-q", "--out", str(tmp_path / "out1"))
    assert only.exit_code == 1 and "no usable reference among the index's top 1" in only.output
    assert not (tmp_path / "out1").exists() or not list((tmp_path / "out1").rglob("*.png"))


def test_tar_rows_are_bounded_before_any_read(crafted, tmp_path, monkeypatch):
    root = crafted[1]
    big = root / "big.tar"
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(3 << 20))
    with tarfile.open(big, "w") as archive:
        archive.add(payload, arcname="animal/huge.png")
    size = big.stat().st_size
    device_root = CorpusRoot("/dev")  # a crafted index may record any root
    start = time.perf_counter()
    with pytest.raises(ImageLoadError, match="not a regular file"):
        read_bytes("tar:///dev/zero#0:10000000000", root=device_root)
    with pytest.raises(ImageLoadError, match="not a regular file"):
        read_bytes("/dev/zero", root=device_root)
    assert time.perf_counter() - start < 1  # refused, not read
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", "100000")  # cap: 0.8 MB + 1 MiB
    corpus = CorpusRoot(str(root.resolve()))
    with pytest.raises(ImageLoadError, match=r"more than .*CHROMAREF_MAX_PIXELS"):
        read_bytes(f"tar://{big.resolve()}#512:{3 << 20}", root=corpus)
    with pytest.raises(ImageLoadError, match="outside the file"):
        read_bytes(f"tar://{big.resolve()}#{size - 10}:1000", root=corpus)
    with pytest.raises(ImageLoadError, match="more than"):
        read_bytes(str(big.resolve()), root=corpus)
    monkeypatch.delenv("CHROMAREF_MAX_PIXELS")
    assert len(read_bytes(f"tar://{big.resolve()}#512:1000", root=corpus)) == 1000


def test_parquet_rows_are_bounded_and_confined(crafted, corpus, monkeypatch):
    root = crafted[1]
    files = sorted(corpus.rglob("*.jpg"))[:2]
    table = pa.table({"image": [p.read_bytes() for p in files]})
    pq.write_table(table, root / "part.parquet")
    part = (root / "part.parquet").resolve()
    corpus_root = CorpusRoot(str(root.resolve()))
    assert read_bytes(f"parquet://{part}#1", root=corpus_root) == files[1].read_bytes()
    with pytest.raises(ImageLoadError, match="has no row 5"):
        read_bytes(f"parquet://{part}#5", root=corpus_root)
    with pytest.raises(ImageLoadError, match="malformed"):
        read_bytes(f"parquet://{part}#one", root=corpus_root)
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", "1")  # cap: 1 MiB + 8 bytes
    pq.write_table(pa.table({"image": [b"\0" * (2 << 20)]}), root / "big.parquet")
    with pytest.raises(ImageLoadError, match="more than"):
        read_bytes(f"parquet://{(root / 'big.parquet').resolve()}#0", root=corpus_root)


@pytest.mark.slow
def test_object_store_options_from_an_untrusted_index_are_refused(crafted, monkeypatch):
    index_dir, _ = crafted
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    endpoint = f"127.0.0.1:{listener.getsockname()[1]}"
    options = f"endpoint_override={endpoint}&scheme=http"
    uri = f"s3://bucket/photos/a.jpg?{options}"
    _set_uris(index_dir, {0: uri})
    _reseal(index_dir, corpus=f"s3://bucket/photos?{options}")
    index = Index.open(index_dir)
    with pytest.raises(ImageLoadError, match=r"endpoint_override, scheme.*trust"):
        index.load_reference(_hit(index, 0))
    with pytest.raises(IndexFileError, match=r"manifest\.json: its corpus root"):
        index.check_references()
    with pytest.raises(BlockingIOError):
        listener.accept()  # chromaref never connected to the host the index chose
    listener.close()
    for root, why in (
        ("s3://key:secret@bucket/photos", "credentials"),
        ("hdfs://namenode:8020/photos", "names a host"),
    ):
        with pytest.raises(IndexFileError, match=why):
            CorpusRoot(root).check()
    trusted = CorpusRoot(f"s3://bucket/photos?{options}", trust=True)
    with pytest.raises(FileError, match="another bucket, host or options"):
        trusted.resolve("s3://bucket/photos/a.jpg?endpoint_override=elsewhere:1")
    monkeypatch.setenv(TRUSTED_ENV, f"/nowhere{os.pathsep}{index_dir}")
    assert Index.open(index_dir).corpus.trust


# --- damaged and crafted files: one line, exit 2 -----------------------------------------------


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _faiss_with_extra_vector(index_dir: Path) -> None:
    from chromaref.retrieval.vector_index import VectorIndexConfig, build_vector_index

    semantic = np.load(index_dir / "semantic.npy")
    vectors, _ = build_vector_index(
        np.concatenate([semantic, semantic[:1]]), config=VectorIndexConfig(kind="flat")
    )
    vectors.save(index_dir / store.FAISS)


def _nan_in_luminance(index_dir: Path, *, redigest: bool) -> None:
    luminance = np.load(index_dir / "luminance.npy")
    luminance[:] = np.nan  # every row, so whatever the search reads
    np.save(index_dir / "luminance.npy", luminance)
    if redigest:
        table = pq.read_table(index_dir / store.ROWS)
        digests = pa.array(store.row_digests(luminance), pa.uint64())
        where = table.schema.get_field_index("digest_luminance")
        pq.write_table(
            table.set_column(where, "digest_luminance", digests), index_dir / "rows.parquet"
        )


DAMAGE = {
    "manifest-json": (lambda d: _truncate(d / "manifest.json"), "manifest.json", False),
    "manifest-field": (
        lambda d: (d / "manifest.json").write_text(
            json.dumps({**json.loads((d / "manifest.json").read_text()), "count": "many"})
        ),
        "manifest.json",
        False,
    ),
    "rows-truncated": (lambda d: _truncate(d / "rows.parquet"), "rows.parquet", False),
    "rows-resealed": (lambda d: _truncate(d / "rows.parquet"), "rows.parquet", True),
    "npy-truncated": (lambda d: _truncate(d / "local.npy"), "local.npy", False),
    "npy-resealed": (lambda d: _truncate(d / "local.npy", 0.9), "local.npy", True),
    "npy-shape": (
        lambda d: np.save(d / "local.npy", np.load(d / "local.npy")[:, :3]),
        "local.npy",
        True,
    ),
    "faiss-tampered": (lambda d: _truncate(d / "semantic.faiss", 0.99), "semantic.faiss", False),
    "faiss-more-vectors": (_faiss_with_extra_vector, "semantic.faiss", True),
    "nan-descriptors": (lambda d: _nan_in_luminance(d, redigest=False), "luminance.npy", False),
    "nan-redigested": (lambda d: _nan_in_luminance(d, redigest=True), "luminance.npy", True),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_index_is_one_line_naming_the_file(case, crafted, query):
    index_dir, _ = crafted
    damage, file, reseal = DAMAGE[case]
    damage(index_dir)
    if reseal:
        _reseal(index_dir)
    result = _invoke("index", "search", str(index_dir), str(query[0]), "--json")
    line = _one_error_line(result)
    assert str(index_dir / file) in line, line


@pytest.mark.slow
def test_colorize_auto_and_the_installed_cli_refuse_a_damaged_index(crafted, query, tmp_path):
    index_dir, _ = crafted
    _nan_in_luminance(index_dir, redigest=True)
    _reseal(index_dir)
    out = tmp_path / "out"
    result = _invoke(
        "colorize", str(query[0]), "--auto", "--index", str(index_dir), "-q", "--out", str(out)
    )
    # found at search time, inside the per-target loop: a damaged index stops the run
    assert result.exit_code == 2 and "luminance.npy" in _one_error_line(result)
    assert "NaN" in result.output and "internal error" not in result.output
    _truncate(index_dir / "rows.parquet")  # found when the index is opened: exit 2
    result = _invoke(
        "colorize", str(query[0]), "--auto", "--index", str(index_dir), "-q", "--out", str(out)
    )
    assert str(index_dir / "rows.parquet") in _one_error_line(result)
    _truncate(index_dir / "manifest.json")
    cli = Path(sys.executable).with_name("chromaref")
    done = subprocess.run(
        [str(cli), "index", "search", str(index_dir), str(query[0])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "manifest.json" in lines[0] and "not valid JSON" in lines[0]


@pytest.mark.slow
def test_a_tampered_index_is_refused_at_open_or_before_a_row_is_used(crafted, query):
    index_dir, _ = crafted
    pristine = (index_dir / "rows.parquet").read_bytes()
    data = bytearray(pristine)
    data[len(data) // 2] ^= 0xFF
    (index_dir / "rows.parquet").write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match=r"rows\.parquet: its sha256 does not match"):
        Index.open(index_dir)
    (index_dir / "rows.parquet").write_bytes(pristine)
    local = np.load(index_dir / "local.npy")
    local += np.float16(0.01)  # every row changes, and stays finite
    np.save(index_dir / "local.npy", local)
    _reseal(index_dir)  # even with the file checksums rewritten to match
    index = Index.open(index_dir)  # the arrays are not hashed whole at open (see index.py)
    with pytest.raises(IndexFileError, match=r"local\.npy: row \d+ does not match its digest"):
        index.search(load_image(query[0]).rgb, 3)


def test_index_verify_hashes_every_file(local_index, tmp_path):
    result = _invoke("index", "verify", str(local_index))
    assert result.exit_code == 0 and "match the manifest" in result.output
    copy = tmp_path / "copy"
    shutil.copytree(local_index, copy)
    with open(copy / "semantic.npy", "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    line = _one_error_line(_invoke("index", "verify", str(copy)))
    assert str(copy / "semantic.npy") in line and "sha256" in line


def test_search_json_is_always_strict_json(local_index, query):
    result = _invoke("index", "search", str(local_index), str(query[0]), "--top", "3", "--json")
    assert result.exit_code == 0, result.output

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in --json output")

    hits = json.loads(result.output, parse_constant=refuse)
    assert len(hits) == 3 and all(isinstance(h["score"], float) for h in hits)


# --- what a build keeps out --------------------------------------------------------------------


def test_mapper_rejects_non_finite_descriptors(corpus):
    from chromaref.retrieval.descriptors import DescriptorConfig, DescriptorExtractor
    from chromaref.retrieval.mapper import DescriptorMapper, decode_batch

    config = DescriptorConfig()
    uris = [str(p) for p in sorted((corpus / "food").glob("*.jpg"))[:2]]
    batch = {"id": np.array(["a", "b"]), "uri": np.array(uris), "label": np.array(["", ""])}
    decoded = decode_batch(batch, config.image_size)
    decoded["thumbnail"][1] = np.nan  # what a broken decoder or model would hand over
    out = DescriptorMapper(config.model_dump_json(), extractor=DescriptorExtractor(config))(decoded)
    assert out["reason"].tolist() == ["", store.NON_FINITE]
    assert np.isfinite(out["semantic"]).all() and not out["semantic"][1].any()


@pytest.mark.slow
def test_build_skips_links_out_of_the_corpus(corpus, tmp_path):
    root = tmp_path / "small"
    (root / "food").mkdir(parents=True)
    for photo in sorted((corpus / "food").glob("*.jpg"))[:2]:
        shutil.copy(photo, root / "food" / photo.name)
    outside = tmp_path / "elsewhere.jpg"
    shutil.copy(sorted((corpus / "animal").glob("*.jpg"))[0], outside)
    (root / "food" / "link.jpg").symlink_to(outside)
    report = build_index(root, tmp_path / "idx", config=BuildConfig(runner="local"))
    assert report.count == 2
    reasons = dict(report.skipped)
    assert "outside the index's corpus root" in reasons[str(root.resolve() / "food" / "link.jpg")]
    index = Index.open(tmp_path / "idx")
    assert all(u.startswith(str(root.resolve())) for u in index.rows["uri"])


def test_search_table_escapes_control_characters_from_the_index(crafted, query):
    index_dir, root = crafted
    row = _row_of(index_dir, Path(query[1]).name)
    _set_uris(index_dir, {row: f"{root.resolve()}/food/\x1b[2J\x1b]0;owned\x07x.jpg"})
    result = _invoke("index", "search", str(index_dir), str(query[0]), "--top", "1")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\\x1b[2J" in result.output


# --- review round: bounded Parquet reads, null rows, credentials, ~ ---------------------------


def test_a_parquet_row_group_beyond_the_cap_is_refused_before_it_is_read(
    crafted, corpus, monkeypatch
):
    root = crafted[1]
    corpus_root = CorpusRoot(str(root.resolve()))
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", "1")  # cap: 1 MiB + 8 bytes an image
    small = [os.urandom(600 << 10), os.urandom(600 << 10)]  # each under the cap, not together
    one_group, per_row = root / "one_group.parquet", root / "per_row.parquet"
    pq.write_table(pa.table({"image": small}), one_group, compression="none")
    pq.write_table(pa.table({"image": small}), per_row, compression="none", row_group_size=1)
    with pytest.raises(ImageLoadError, match=r"row group 0 declares \d+ bytes.*row_group_size"):
        read_bytes(f"parquet://{one_group.resolve()}#1", root=corpus_root)
    with pytest.raises(ConfigError, match=r"one_group\.parquet: row group 0 declares"):
        build_index(one_group, root.parent / "refused", config=BuildConfig(runner="local"))
    for row in (1, 0, 1):  # out of order too: the cached group is re-read when needed
        assert read_bytes(f"parquet://{per_row.resolve()}#{row}", root=corpus_root) == small[row]


@pytest.mark.parametrize("column", ["uri", "id", "sha1"])
@pytest.mark.slow
def test_null_values_in_rows_are_one_line_naming_rows_parquet(column, crafted, query, tmp_path):
    index_dir, _ = crafted
    table = pq.read_table(index_dir / store.ROWS)
    values = table[column].to_pylist()
    values[_row_of(index_dir, Path(query[1]).name)] = None  # the row the search would show
    where = table.schema.get_field_index(column)
    table = table.set_column(where, column, pa.array(values, pa.string()))
    pq.write_table(table, index_dir / store.ROWS)
    _reseal(index_dir)  # only the null check can catch it
    search = _invoke("index", "search", str(index_dir), str(query[0]))
    colorize = _invoke(
        "colorize", str(query[0]), "--auto", "--index", str(index_dir), "-q", "--out",
        str(tmp_path / "out"),
    )  # fmt: skip
    for result in (search, colorize):
        line = _one_error_line(result)
        assert str(index_dir / store.ROWS) in line and f"null values in {column}" in line


@pytest.mark.slow
def test_index_open_expands_the_home_folder(local_index, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(local_index, tmp_path / "indexes" / "x")
    assert Index.open("~/indexes/x").rows["id"] == Index.open(local_index).rows["id"]


def test_index_build_refuses_credentials_in_the_corpus_uri(tmp_path):
    for uri in (
        "s3://AKIAEXAMPLE:hunter2secret@bucket/photos",
        "s3://bucket/photos?region=eu-west-1&secret_key=hunter2secret",
    ):
        result = _invoke("index", "build", uri, "--out", str(tmp_path / "index"))
        line = _one_error_line(result)
        assert "credentials" in line and "AWS_ACCESS_KEY_ID" in line, line
        assert "hunter2secret" not in result.output and "AKIAEXAMPLE" not in result.output
    assert not (tmp_path / "index").exists()
