"""Every long job through the real CLI with `--address` on a multi-process cluster (a `ray
start` head and a `ray start` worker node of 1 CPU each on 127.0.0.1): `index build`, `train`,
`serve` and a `video` batch give what a single-node run gives, and stopping the cluster leaves
no process and no address file behind.

Two descriptor actors and two training workers of 1 CPU each on two nodes of 1 CPU each: Ray
has to put one on each node, so that work does cross nodes (the two 1-CPU video tasks may
share one node, one after the other).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml
from clips import decode_all, pan_frames, write_clip
from PIL import Image
from ray_start_cluster import CliCluster

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.integration]

NODES = """
import json, ray
ray.init(address=__import__("sys").argv[1], logging_level="ERROR")
print(json.dumps([n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]]))
"""
# A ~20k-parameter ColorNet on 64 px crops (as tests/training): seconds per step.
TINY_TRAINING = {
    "model_options": {"width": 8, "depths": [1, 1, 1, 1], "middle_blocks": 0, "feature_reduce": 8},
    "matching": {"working_size": 64},
    "batch_size": 2,
    "log_every": 1,
    "checkpoint_every": 2,
    "data": {"max_val_images": 1},
    "workers": 2,
    "steps": 2,
    "seed": 7,
}
SERVE_SETTINGS = ("working_size=128", "colorizer.num_cpus=1", "retriever.num_cpus=0.25")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Where the CLI runs: not the cluster's working folder, as on a real cluster."""
    return tmp_path_factory.mktemp("cluster_work")


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_the_cluster_is_two_separate_nodes_of_one_cpu(cli_cluster):
    raylets = [p for p in cli_cluster.processes() if _cmdline(p).startswith(_raylet_binary())]
    assert len(raylets) == 2  # two node processes, not one node with 2 CPUs
    done = subprocess.run(
        [sys.executable, "-c", NODES, cli_cluster.address],
        env=cli_cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [1.0, 1.0]
    assert cli_cluster.recorded(cli_cluster.address_file)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _raylet_binary() -> str:
    import ray

    return str(Path(ray.__file__).parent / "core" / "src" / "ray" / "raylet" / "raylet")


# ---------------------------------------------------------------------------- index build


def test_index_build_on_the_cluster_equals_a_single_node_build(
    cli_cluster, corpus, local_index, work
):
    from chromaref.retrieval.index import Index
    from chromaref.retrieval.store import DESCRIPTOR_DTYPES

    out = work / "index"
    done = cli_cluster.cli(
        "index", "build", str(corpus), "--out", str(out), "--address", cli_cluster.address,
        "--shard-size", "4", "-q", cwd=work,
    )  # fmt: skip
    _ok(done)
    assert f"joined the Ray cluster at {cli_cluster.address}" in done.stderr
    cluster, single = Index.open(out), Index.open(local_index)
    assert cluster.rows == single.rows  # ids, uris, labels, sha1: the same rows in order
    for name, dtype in DESCRIPTOR_DTYPES.items():
        got, want = np.load(out / f"{name}.npy"), np.load(local_index / f"{name}.npy")
        tolerance = 1e-4 if dtype == np.float32 else 2e-3
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), atol=tolerance)
    query = np.load(out / "semantic.npy").astype(np.float32)
    assert [cluster.vectors.search(q[None], 3)[1].tolist() for q in query] == [
        single.vectors.search(q[None], 3)[1].tolist() for q in query
    ]


# ---------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def training_config(work) -> Path:
    from chromaref.platform.assets import photos

    corpus = work / "train_photos"
    corpus.mkdir()
    for p in photos()[:8]:
        shutil.copy(p.path, corpus / p.path.name)
    path = work / "train.yaml"
    path.write_text(yaml.safe_dump({**TINY_TRAINING, "corpus": str(corpus)}))
    return path


def _train(cluster, config: Path, cwd: Path) -> dict:
    """One `chromaref train --address` run from `cwd` (its own MLflow store); its losses per
    step."""
    from mlflow import MlflowClient

    cwd.mkdir()
    args = ["--config", str(config), "--set", "name=multinode", "--address", cluster.address]
    done = cluster.cli("train", *args, "--quiet", cwd=cwd)
    assert _ok(done).strip().endswith("colornet.pt")
    client = MlflowClient(f"sqlite:///{cwd / 'mlruns.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("chromaref").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["workers"] == "2"
    history = {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        for key in ("train/loss", "train/chroma", "train/perceptual")
    }
    return {"history": history, "model": cwd / "chromaref-model" / "colornet.pt"}


def test_training_on_the_cluster_repeats_a_single_node_run(cli_cluster, training_config, work):
    """Same seed, same first steps. Ray Train places rank 0 on either node, but placement
    cannot change the numbers: each rank's batches depend only on (seed, rank, step), the
    logged loss is the all-reduced mean over both ranks, DDP starts both from rank 0's
    weights, and a 1-CPU worker runs torch on 1 thread in both runs.

    The single node is a `ray start` node of 2 CPUs, started the same way as the cluster's
    nodes, so the two runs differ only in the number of nodes."""
    import torch

    from chromaref.platform.models import ColorNet

    on_cluster = _train(cli_cluster, training_config, work / "train_cluster")
    one_node = CliCluster(head_cpus=2, worker_nodes=0)
    try:
        one_node.start()
        single = _train(one_node, training_config, work / "train_single")
    finally:
        one_node.stop()
    assert not one_node.processes()
    assert [step for step, _ in on_cluster["history"]["train/loss"]] == [1, 2]
    for key, steps in single["history"].items():
        assert [s for s, _ in on_cluster["history"][key]] == [s for s, _ in steps], key
        np.testing.assert_allclose(
            [v for _, v in on_cluster["history"][key]], [v for _, v in steps], rtol=1e-5
        )
    trained = ColorNet.from_file(on_cluster["model"]).state_dict()
    reference = ColorNet.from_file(single["model"]).state_dict()
    assert trained.keys() == reference.keys()
    for name, tensor in reference.items():
        torch.testing.assert_close(trained[name], tensor, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------- serving


def _serve(cluster, index: Path, port: int, cwd: Path) -> tuple[subprocess.Popen, str | None]:
    """Start `chromaref serve --address`; (the process, the URL it announced, or None when
    it exited first)."""
    command = [
        str(Path(sys.executable).parent / "chromaref"), "serve", "--index", str(index),
        "--address", cluster.address, "--port", str(port),
    ]  # fmt: skip
    for setting in SERVE_SETTINGS:
        command += ["--set", setting]
    process = subprocess.Popen(
        command, cwd=cwd, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = process.stdout.readline()  # stdout: the URL alone, once ready
    return process, line.strip() or None


def _stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return process.returncode, err


@pytest.fixture(scope="module")
def served(cli_cluster, local_index, work, photo_rgb) -> dict:
    """One `chromaref serve --address` on the cluster, asked for one colorization, stopped."""
    port = cli_cluster.free_port()
    process, url = _serve(cli_cluster, local_index, port, work)
    target = photo_rgb("chelsea")
    response = None
    try:
        if url:
            upload = io.BytesIO()
            Image.fromarray(target).convert("L").save(upload, format="PNG")
            response = requests.post(
                url + "v1/colorize",
                files=[("image", ("chelsea.png", upload.getvalue()))],
                data={"top": 1},
                timeout=300,
            )
    finally:
        code, err = _stop(process)
    return {"url": url, "port": port, "response": response, "code": code, "err": err,
            "target": target}  # fmt: skip


def test_serve_on_the_cluster_answers_a_colorize_request(served, cli_cluster):
    from chromaref.platform.color import lab_image

    assert served["url"] == f"http://127.0.0.1:{served['port']}/", served["err"]
    response = served["response"]
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["image"]))).convert("RGB"))
    target = served["target"]
    assert image.shape == target.shape
    gray_l = lab_image(np.asarray(Image.fromarray(target).convert("L").convert("RGB")))[..., 0]
    assert np.abs(lab_image(image)[..., 0] - gray_l).max() < 1.0  # the input's luminance
    assert np.abs(image[..., 0].astype(int) - image[..., 2]).mean() > 2  # colored, not gray
    assert served["code"] == 0 and "stopped" in served["err"], served["err"]
    assert "Traceback" not in served["err"]
    raylets = [p for p in cli_cluster.processes() if _cmdline(p).startswith(_raylet_binary())]
    assert len(raylets) == 2  # stopping `serve --address` leaves the cluster running


def test_a_second_serve_on_another_port_is_refused_naming_serves_port(
    served, cli_cluster, local_index, work
):
    """A cluster has one Serve HTTP port; announcing another would be a URL nothing
    listens on."""
    assert served["url"], served["err"]  # Serve now runs on the cluster, on served["port"]
    process, url = _serve(cli_cluster, local_index, cli_cluster.free_port(), work)
    code, err = _stop(process)
    assert url is None and code == 2, err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert f"--port {served['port']}" in line and "Traceback" not in err


def test_serve_on_the_cluster_takes_a_relative_index(served, cli_cluster, local_index, work):
    relative = os.path.relpath(local_index, work)
    process, url = _serve(cli_cluster, Path(relative), served["port"], work)
    try:
        assert url is not None, "the application did not start"
        assert requests.get(url + "readyz", timeout=60).status_code == 200
    finally:
        code, err = _stop(process)
    assert code == 0, err


# ---------------------------------------------------------------------------- video batch


@pytest.fixture(scope="module")
def clips(work, photo_rgb) -> Path:
    """Two 4-frame gray clips panning across real photos, and a color reference."""
    folder = work / "clips"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        gray = np.repeat(photo_rgb(name).mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
        write_clip(folder / f"{name}.mp4", pan_frames(gray, 4, (96, 64)))
    Image.fromarray(photo_rgb("astronaut")).save(work / "reference.jpg")
    return folder


def _video(cluster, cwd: Path, clips: str, reference: str, out: str, *address: str):
    args = ["video", clips, "-r", reference, "--out", out, "--working-size", "64", "-q"]
    return cluster.cli(*args, *address, cwd=cwd)


def test_video_batch_on_the_cluster_equals_a_local_run(cli_cluster, clips, work):
    paths = (str(clips), str(work / "reference.jpg"))  # absolute
    on_cluster = _video(
        cli_cluster, work, *paths, str(work / "v_cluster"), "--address", cli_cluster.address
    )
    assert len(_ok(on_cluster).split()) == 2  # one output per clip (one reference)
    _ok(_video(cli_cluster, work, *paths, str(work / "v_local")))
    for clip in sorted(clips.glob("*.mp4")):
        frames, _ = decode_all(work / "v_cluster" / f"{clip.stem}__ref-reference.mp4")
        local, _ = decode_all(work / "v_local" / f"{clip.stem}__ref-reference.mp4")
        assert len(frames) == len(local) == 4
        for got, want in zip(frames, local, strict=True):
            assert np.abs(got.astype(int) - want).max() <= 2  # the same colorization


def test_video_batch_on_the_cluster_takes_relative_paths(cli_cluster, clips, work):
    """Clip, --reference and --out as typed; the cluster's workers run in another folder."""
    done = _video(
        cli_cluster, work, "clips", "reference.jpg", "v_relative", "--address", cli_cluster.address
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (work / "v_relative").iterdir()) == [
        "chelsea__ref-reference.mp4",
        "coffee__ref-reference.mp4",
    ]


# ---------------------------------------------------------------------------- teardown


def test_stopping_the_cluster_leaves_no_process_and_no_address_file(cli_cluster):
    started = cli_cluster.processes()
    assert len(started) >= 4  # GCS, 2 raylets, agents, workers
    assert cli_cluster.recorded(cli_cluster.address_file)
    start = time.monotonic()
    cli_cluster.stop()
    assert cli_cluster.processes() == [], "processes of the cluster survived"
    assert not any(_cmdline(pid) for pid in started)  # gone (or zombies: no command line)
    assert not cli_cluster.home.exists()  # with its address file and sessions
    assert not cli_cluster.recorded(cli_cluster.GLOBAL_ADDRESS_FILE)  # where other Rays look
    assert time.monotonic() - start < 60
