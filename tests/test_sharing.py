"""Sharing: push from one clone, pull into another, and nothing re-runs (issue: DVC remotes)."""

import filecmp
import hashlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import dvc_in, run

pytestmark = pytest.mark.slow


def tree_digest(root: Path, rel: str) -> dict:
    base = root / rel
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


SHARED = [
    "models/tiny",
    "models/sft-plain-zh",
    "models/sft-reasoning-en",
    "data/prepared/zh",
    "data/prepared/en",
    "data/translated/en",
    "models/grpo-zh",
    "models/grpo-en",
    "data/split",
    "data/validated",
    "checkpoints/grpo-zh",
]


@pytest.fixture(scope="module")
def team(repo, tmp_path_factory):
    """Clone A (has run the pipeline) commits, pushes git to a bare origin and data to a local DVC remote."""
    a, env = repo
    dvc_in(a, env, "repro")
    base = tmp_path_factory.mktemp("team")
    origin, remote = base / "origin.git", base / "dvc-remote"
    run(["git", "add", "-A"], a, env)
    run(["git", "commit", "-qm", "results", "--allow-empty"], a, env)
    run(["git", "init", "-q", "--bare", "--initial-branch=main", str(origin)], base, env)
    run(["git", "remote", "add", "origin", str(origin)], a, env)
    run(["git", "push", "-q", "origin", "main"], a, env)
    dvc_in(a, env, "remote", "add", "--local", "-d", "shared", str(remote))
    dvc_in(a, env, "push")
    return a, env, base, origin, remote


def clone(team, name: str) -> Path:
    a, env, base, origin, _ = team
    dst = base / name
    run(["git", "clone", "-q", str(origin), str(dst)], base, env)
    return dst


def mcqflow(cwd, env, *args):
    return subprocess.run(
        [sys.executable, "-m", "mcqflow.cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_pull_into_a_fresh_clone_reruns_nothing(team):
    a, env, _, _, remote = team
    b = clone(team, "b")
    assert str(remote) not in (b / ".dvc" / "config").read_text()  # the personal path stays out of git
    dvc_in(b, env, "remote", "add", "--local", "-d", "shared", str(remote))
    r = mcqflow(b, env, "pull")
    assert r.returncode == 0, r.stderr
    assert "Data and pipelines are up to date" in dvc_in(b, env, "status")
    out = dvc_in(b, env, "repro")
    stages = len(dvc_in(b, env, "stage", "list", "--name-only").split())
    assert "Running stage" not in out and out.count("didn't change, skipping") == stages
    for rel in SHARED:
        assert tree_digest(a, rel) == tree_digest(b, rel), rel
    assert filecmp.cmp(a / "submissions/sft-plain-zh.csv", b / "submissions/sft-plain-zh.csv", shallow=False)


def test_a_remote_that_lacks_outputs_names_them_and_their_stage(team):
    a, env, base, _, _ = team
    partial = base / "partial-remote"
    dvc_in(a, env, "remote", "add", "--local", "partial", str(partial))
    dvc_in(a, env, "push", "-r", "partial", "ingest@zh", "ingest@en", "tiny_model")
    c = clone(team, "c")
    dvc_in(c, env, "remote", "add", "--local", "-d", "partial", str(partial))
    r = mcqflow(c, env, "pull")
    assert r.returncode == 1
    assert (
        "mcqflow: missing: models/sft-plain-zh: not in the remote; produce it with `dvc repro sft@plain-zh`"
        in r.stderr
    )
    assert "Traceback" not in r.stderr and "data/prepared/zh: not in the remote" not in r.stderr


def test_pull_without_a_remote_says_how_to_set_one(team):
    d = clone(team, "d")
    r = mcqflow(d, team[1], "pull")
    assert r.returncode == 2 and "no DVC remote is set: `make remote" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server(tmp_path):
    """An S3-compatible server (moto) on loopback, with one bucket."""
    import boto3

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        boto3.client(
            "s3",
            endpoint_url=url,
            **{k.lower(): v for k, v in creds.items() if k != "AWS_DEFAULT_REGION"},
            region_name="us-east-1",
        ).create_bucket(Bucket="mcqflow")
        yield url, creds
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_round_trip_through_s3(team, s3_server):
    a, env, *_ = team
    url, creds = s3_server
    env = {**env, **creds}  # credentials only through the environment
    for clone_dir in (a, f := clone(team, "f")):
        dvc_in(clone_dir, env, "remote", "add", "--local", "s3", "s3://mcqflow/store")
        dvc_in(clone_dir, env, "remote", "modify", "--local", "s3", "endpointurl", url)
    dvc_in(a, env, "push", "-r", "s3")
    r = mcqflow(f, env, "pull", "--remote", "s3")
    assert r.returncode == 0, r.stderr
    assert "Data and pipelines are up to date" in dvc_in(f, env, "status")
    for rel in SHARED:
        assert tree_digest(a, rel) == tree_digest(f, rel), rel
    assert "testing" not in (f / ".dvc" / "config").read_text()
    assert not any("testing" in p.read_text(errors="ignore") for p in (f / ".dvc").glob("config*"))


def test_experiments_travel_with_exp_push_and_pull(team):
    a, env, _, _, remote = team
    dvc_in(a, env, "exp", "run", "-n", "shared-exp", "-S", "predict.batch_size=8")
    dvc_in(a, env, "exp", "push", "origin", "shared-exp")
    e = clone(team, "e")
    dvc_in(e, env, "remote", "add", "--local", "-d", "shared", str(remote))
    dvc_in(e, env, "exp", "pull", "origin", "shared-exp")
    assert "shared-exp" in dvc_in(e, env, "exp", "list")
    dvc_in(e, env, "exp", "apply", "shared-exp")
    assert "batch_size: 8" in (e / "params.yaml").read_text()
    assert "Data and pipelines are up to date" in dvc_in(e, env, "status")
