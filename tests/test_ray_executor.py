"""Episodes on Ray workers (armap_agents.ray_executor): a local cluster started by the tests
(the head: 2 CPUs on 127.0.0.1, no dashboard; one test joins a second node), every episode
recorded exactly once (also when a worker is killed mid-episode, or the driver is killed and
rerun), the same trajectories as in process, and a usage budget that holds across workers."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from armap_agents.environments.game24 import Game24Env
from armap_agents.errors import BudgetExceeded, ConfigError
from armap_agents.graphs.explore import ExploreConfig, explore, failures_path
from armap_agents.llm import UsageLimits, UsageTracker
from armap_agents.pipeline import explore_trajectories
from armap_agents.policies import RandomPolicy

if importlib.util.find_spec("ray") is None:
    pytest.skip("the Ray executor needs the extra [ray]", allow_module_level=True)

SLOW_ENV = f"{Path(__file__).parent / 'support' / 'ray_slow_env.py'}:SlowGame24"


@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster of one head node (2 CPUs) on 127.0.0.1, this process connected to it;
    its processes are the cluster object's own, stopped by it."""
    with pytest.MonkeyPatch.context() as patch:
        # Ray reads it on import: keep the cluster on the loopback address
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        import ray
        from ray.cluster_utils import Cluster

        head = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 2,
                "node_ip_address": "127.0.0.1",
                "include_dashboard": False,
            },
        )
        try:
            ray.init(address=head.address)
            yield head
        finally:
            ray.shutdown()
            head.shutdown()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _ids(path: Path) -> Counter:
    return Counter(t["episode_id"] for t in _lines(path))


def _expected(tasks: list[str], episodes: int) -> Counter:
    return Counter(f"{t}#{k}" for t in tasks for k in range(episodes))


def test_ray_episodes_are_the_in_process_ones_and_resume(cluster, tmp_path) -> None:
    from armap_agents.ray_executor import RayExecutor

    config = ExploreConfig(task_ids=["1", "2", "3", "5"], episodes_per_task=3, max_steps=3)
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    explore(RandomPolicy(), Game24Env, local, config, progress=False)
    with RayExecutor("game24", "random", workers=2) as executor:
        result = explore(None, Game24Env, remote, config, progress=False, executor=executor)
        again = explore(None, Game24Env, remote, config, progress=False, executor=executor)
    assert result.finished == 12 and result.failed == 0
    assert again.already_done == 12 and again.finished == 0
    assert _ids(remote) == _expected(config.task_ids, 3)
    # same seeds, same episodes: where they ran changes nothing in what is recorded
    by_id = {t["episode_id"]: t for t in _lines(local)}
    assert all(by_id[t["episode_id"]] == t for t in _lines(remote))


def test_a_worker_killed_mid_episode_loses_and_duplicates_nothing(cluster, tmp_path) -> None:
    from armap_agents.ray_executor import RayExecutor

    tasks = ["1", "2", "3", "5", "6", "7"]
    config = ExploreConfig(task_ids=tasks, episodes_per_task=2, max_steps=3, max_concurrency=2)
    out = tmp_path / "trajectories.jsonl"
    with RayExecutor(SLOW_ENV, "random", workers=2) as executor:
        victim = executor.pids[0]
        run = threading.Thread(
            target=explore,
            args=(None, Game24Env, out, config),
            kwargs={"progress": False, "executor": executor},
        )
        run.start()
        deadline = time.monotonic() + 60
        while len(_lines(out)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)  # busy: episodes follow each other back to back
        run.join(timeout=120)
        assert not run.is_alive()
        assert executor.retried >= 1  # the episode it was playing went to a worker again
        assert victim not in executor.worker_pids()  # it restarted, as a new process
    assert _ids(out) == _expected(tasks, 2)  # 0 lost, 0 duplicated
    assert _lines(failures_path(out)) == []


class _FakeOpenAI(ThreadingHTTPServer):
    """An OpenAI-compatible chat server on 127.0.0.1 that counts the requests it answers."""

    def __init__(self) -> None:
        self.requests = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                with server.lock:
                    server.requests += 1
                body = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "fake",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "1 + 2 = 3"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_a_usage_budget_holds_across_the_workers(cluster, tmp_path) -> None:
    server = _FakeOpenAI()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    usage = UsageTracker(UsageLimits(max_calls=7))
    out = tmp_path / "trajectories.jsonl"
    try:
        with pytest.raises(BudgetExceeded, match="limit 7"):
            explore_trajectories(
                out=out,
                policy=f"openai-compatible:http://127.0.0.1:{server.server_port}/v1:fake",
                max_tasks=6,
                episodes_per_task=2,
                max_steps=3,
                max_concurrency=2,
                usage=usage,
                echo=None,
                executor="ray",
            )
    finally:
        server.shutdown()
    assert server.requests == 7  # two workers asked one account: not one request more
    assert usage.usage.calls <= 7 and usage.exhausted
    assert all(len(t["steps"]) == t["policy_calls"] for t in _lines(out))  # whole episodes


def test_evaluation_candidates_run_on_the_workers(cluster, tmp_path) -> None:
    from armap_agents.evaluation import evaluate_planners
    from armap_agents.ray_executor import RayExecutor
    from armap_agents.testing import FunctionReward

    reward = FunctionReward(lambda intent, t: float(len(t.steps)))
    planners = {"best_of_n": {"n": 3, "max_steps": 3}}
    tasks = ["901", "905"]
    kwargs = {"task_ids": tasks, "progress": False, "max_concurrency": 2}
    here = evaluate_planners(RandomPolicy(), Game24Env, reward, planners, **kwargs)
    with RayExecutor("game24", "random", workers=2) as executor:
        there = evaluate_planners(
            RandomPolicy(), Game24Env, reward, planners, executor=executor, **kwargs
        )
    for a, b in zip(here.rows, there.rows, strict=True):
        assert (a.method, a.success_rate, a.policy_calls) == (
            b.method,
            b.success_rate,
            b.policy_calls,
        )


@pytest.mark.slow
def test_a_killed_driver_reruns_without_loss_or_duplicates(cluster, tmp_path) -> None:
    out = tmp_path / "trajectories.jsonl"
    command = [
        sys.executable, "-m", "armap_agents.cli", "explore", "--env", SLOW_ENV,
        "--out", str(out), "--split", "test", "--max-tasks", "6", "--episodes-per-task", "2",
        "--max-steps", "3", "--concurrency", "2",
        "--executor", "ray", "--ray-address", cluster.address,
    ]  # fmt: skip
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    driver = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(_lines(out)) < 3 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.05)
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        driver.wait()
    partial = _ids(out)
    assert 3 <= sum(partial.values()) < 12 and max(partial.values()) == 1
    subprocess.run(command, env=env, check=True, timeout=300, stderr=subprocess.DEVNULL)
    tasks = Game24Env().task_ids("test")[:6]
    assert _ids(out) == _expected(tasks, 2)


@pytest.mark.slow
def test_two_nodes_explore_scienceworld_and_game24(cluster, tmp_path) -> None:
    if importlib.util.find_spec("scienceworld") is None:
        pytest.skip("needs the extra [scienceworld]")
    import ray

    from armap_agents.environments.registry import make_env_factory
    from armap_agents.ray_executor import RayExecutor

    node = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    try:
        cluster.wait_for_nodes()
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        runs = [
            ("game24", {}, ["1", "2", "3", "5"], 2),
            ("scienceworld", {"tasks": ["boil", "melt"]}, ["boil/0", "melt/0"], 2),
        ]
        for env, options, tasks, episodes in runs:
            out = tmp_path / f"{env}.jsonl"
            config = ExploreConfig(task_ids=tasks, episodes_per_task=episodes, max_steps=3)
            factory = make_env_factory(env, **options)
            # three workers of one CPU each: the head has two, so one is on the new node
            with RayExecutor(env, "random", env_options=options, workers=3) as executor:
                deadline = time.monotonic() + 30  # the resource view lags the placement
                while ray.available_resources().get("CPU", 0) and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert ray.available_resources().get("CPU", 0) == 0
                result = explore(None, factory, out, config, progress=False, executor=executor)
            assert result.failed == 0
            assert _ids(out) == _expected(tasks, episodes)
    finally:
        cluster.remove_node(node)


def test_a_ray_address_needs_the_ray_executor(tmp_path) -> None:
    with pytest.raises(ConfigError, match="--executor ray only"):
        explore_trajectories(out=tmp_path / "t.jsonl", ray_address="auto", echo=None)


def test_ray_is_imported_only_by_the_ray_executor() -> None:
    probe = (
        "import sys\nfrom armap_agents.cli import main\nimport armap_agents.graphs.explore\n"
        "import armap_agents.pipeline, armap_agents.evaluation\n"
        "try: main(['explore', '--help'])\nexcept SystemExit: pass\n"
        "print('ray' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert "--executor {local,ray}" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_evaluation_counts_the_workers_llm_requests_per_method(cluster) -> None:
    from armap_agents import _builders as build
    from armap_agents.evaluation import evaluate_planners
    from armap_agents.ray_executor import RayExecutor
    from armap_agents.testing import ConstantReward

    server = _FakeOpenAI()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    spec = f"openai-compatible:http://127.0.0.1:{server.server_port}/v1:fake"
    usage = UsageTracker()
    try:
        with RayExecutor("game24", spec, workers=2, usage=usage) as executor:
            report = evaluate_planners(
                build.policy(spec),
                Game24Env,
                ConstantReward(),
                {"best_of_n": {"n": 2, "max_steps": 2}},
                task_ids=["901"],
                progress=False,
                executor=executor,
            )
    finally:
        server.shutdown()
    rows = {r.method: r.usage.calls for r in report.rows}
    # every request was made on a worker, and each reached its method's row and the driver
    assert rows["Greedy"] + rows["ARMAP-B (N=2)"] == server.requests == usage.usage.calls > 0


def test_without_ray_the_executor_says_what_to_install(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra sees
    with pytest.raises(ConfigError, match=r"pip install 'armap-agents\[ray\]'"):
        explore_trajectories(out=tmp_path / "t.jsonl", executor="ray", echo=None)
    assert not (tmp_path / "t.jsonl").exists()
