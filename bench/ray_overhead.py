#!/usr/bin/env python3
"""What Ray costs on this machine, for medsearch.distributed (shard actors, build tasks).

One local Ray instance per section, started with the arguments the tests use
(``RAY_INIT`` below). Sections:
  * startup: ray.init and ray.shutdown wall time (``--cycles`` times in one process);
  * memory: RSS and PSS summed over every process of the instance (the driver's
    descendants) with 4 idle actors, and with none;
  * latency: one trivial actor call at a time (``ray.get(a.ping.remote())``),
    a fan-out to 4 actors gathered with one ``ray.get``, and a 50 KB ``bytes``
    argument/return; ``--calls`` timed calls after a warm-up; p50/p99 in
    microseconds, ``time.perf_counter_ns`` around submit + get;
  * scheduling: 4 actors plus 4 CPU-bound build tasks on 2 CPUs, with the
    actors at num_cpus=0, at Ray's default and at num_cpus=1 (which cannot
    place more than 2 actors, and then no task runs);
  * faults: an actor with max_restarts=-1 killed, by ray.kill(no_restart=False)
    and by SIGKILL of its process, with max_task_retries 0 and -1, ``--repeats``
    times each: during a loop of calls (exception classes seen, time until the
    new process answers) and during one 1 s call (what that call returns);
  * connect: ``ray start --head --block`` in a subprocess, ray.init(address=...)
    from this process, then the head is ended by its PID (never ``ray stop``,
    which ends every Ray process of the user on the machine).

Usage:
  .venv/bin/python bench/ray_overhead.py [--sections startup,memory,...]
      [--calls N] [--cycles C] [--repeats R] [--output FILE]

Writes FILE (default bench/results/distributed/ray_overhead.json) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# Set before Ray is imported (and inherited by `ray start`):
#  * RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: Ray's single-machine mode. Every Ray
#    process listens and connects on 127.0.0.1. Otherwise Ray rewrites 127.0.0.1
#    and localhost (also in ray.init(_node_ip_address=...) and address=...) to
#    the eth0 address and listens on all interfaces; only joining a second node
#    is refused in this mode.
#  * no usage-stats upload (there is no network);
#  * no token written to ~/.ray for a cluster that listens on 127.0.0.1 only.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Short: Ray puts Unix sockets under it, and a socket path has at most 107 bytes.
TEMP_DIR = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
RAY_INIT = dict(
    num_cpus=2,
    include_dashboard=False,
    object_store_memory=256 * 2**20,
    log_to_driver=False,
    _temp_dir=TEMP_DIR,
)


class _Shard:
    """Stands in for a shard actor: answers at once."""

    def ping(self):
        return None

    def echo(self, payload: bytes) -> bytes:
        return payload

    def size(self, payload: bytes) -> int:
        return len(payload)

    def pid(self) -> int:
        return os.getpid()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# What the tests use: the actor holds no CPU, so build tasks always get both.
Shard = ray.remote(num_cpus=0)(_Shard)
# Ray's default for an actor: 1 CPU to be placed, 0 while it lives.
DefaultShard = ray.remote(_Shard)


@ray.remote(num_cpus=1)
def build_shard(seconds: float) -> float:
    """Stands in for a shard build: CPU-bound for about `seconds`."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1
    return seconds


def percentiles_us(samples_ns: list[int]) -> dict:
    s = sorted(samples_ns)
    at = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1e3  # noqa: E731
    return {"p50_us": round(at(0.50), 1), "p99_us": round(at(0.99), 1),
            "mean_us": round(statistics.fmean(s) / 1e3, 1), "n": len(s)}


def time_calls(call, n: int, warmup: int = 200) -> dict:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - t)
    return percentiles_us(samples)


def descendants(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def process_memory(root_pid: int) -> dict:
    """RSS and PSS (MiB) of root_pid and its descendants, by command name."""
    total_rss = total_pss = processes = 0
    by_name: dict[str, float] = {}
    for pid in descendants(root_pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/smaps_rollup") as f:
                fields = {line.split(":")[0]: int(line.split()[1]) for line in f if line.endswith("kB\n")}
        except OSError:
            continue
        processes += 1
        total_rss += fields["Rss"]
        total_pss += fields["Pss"]
        by_name[name] = by_name.get(name, 0) + fields["Rss"] / 1024
    return {"processes": processes, "driver_rss_mib": round(_rss_kib(root_pid) / 1024),
            "rss_mib": round(total_rss / 1024), "pss_mib": round(total_pss / 1024),
            "rss_mib_by_name": {k: round(v) for k, v in sorted(by_name.items(), key=lambda kv: -kv[1])}}


def listen_addresses(root_pid: int) -> list[str]:
    """The local addresses that root_pid and its descendants listen on (TCP)."""
    pids = {str(pid) for pid in descendants(root_pid)}
    lines = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines()
    hosts = {line.split()[3].rsplit(":", 1)[0] for line in lines
             if any(f"pid={pid}," in line for pid in pids)}
    return sorted(hosts)


def section_startup(args) -> dict:
    inits, first_calls, shutdowns = [], [], []
    for _ in range(args.cycles):
        t = time.perf_counter()
        ray.init(**RAY_INIT)
        inits.append(time.perf_counter() - t)
        t = time.perf_counter()
        ray.get(Shard.remote().ping.remote())  # the cluster answers, not only started
        first_calls.append(time.perf_counter() - t)
        t = time.perf_counter()
        ray.shutdown()
        shutdowns.append(time.perf_counter() - t)
    seconds = lambda xs: [round(x, 2) for x in xs]  # noqa: E731
    return {"init_s": seconds(inits), "first_actor_call_s": seconds(first_calls),
            "shutdown_s": seconds(shutdowns)}


def section_memory(args) -> dict:
    ray.init(**RAY_INIT)
    time.sleep(3)
    idle = process_memory(os.getpid())
    actors = [Shard.remote() for _ in range(4)]
    ray.get([a.ping.remote() for a in actors])
    time.sleep(3)
    with_actors = process_memory(os.getpid())
    listening = listen_addresses(os.getpid())
    ray.shutdown()
    return {"no_actors": idle, "four_idle_actors": with_actors, "listen_addresses": listening}


def section_latency(args) -> dict:
    ray.init(**RAY_INIT)
    actors = [Shard.remote() for _ in range(4)]
    ray.get([a.ping.remote() for a in actors])
    one = actors[0]
    payload = os.urandom(50_000)
    out = {
        "ping": time_calls(lambda: ray.get(one.ping.remote()), args.calls),
        "fanout4_ping": time_calls(lambda: ray.get([a.ping.remote() for a in actors]), args.calls),
        "arg50k_return_int": time_calls(lambda: ray.get(one.size.remote(payload)), args.calls),
        "arg50k_return50k": time_calls(lambda: ray.get(one.echo.remote(payload)), args.calls),
        "fanout4_arg50k_return50k": time_calls(
            lambda: ray.get([a.echo.remote(payload) for a in actors]), args.calls),
    }
    # One put shared by the 4 calls instead of 4 inline copies of the argument.
    ref = ray.put(payload)
    out["fanout4_put50k_return_int"] = time_calls(
        lambda: ray.get([a.size.remote(ref) for a in actors]), args.calls)
    ray.shutdown()
    return out


def section_scheduling(args) -> dict:
    out = {}
    for actor_cpus in (0, "default", 1):
        ray.init(**RAY_INIT)
        if actor_cpus == "default":
            actors = [DefaultShard.remote() for _ in range(4)]
        else:
            actors = [Shard.options(num_cpus=actor_cpus).remote() for _ in range(4)]
        ready, pending = ray.wait([a.ping.remote() for a in actors], num_returns=4, timeout=10)
        t = time.perf_counter()
        builds = [build_shard.remote(1.0) for _ in range(4)]
        done, not_done = ray.wait(builds, num_returns=4, timeout=15)
        out[f"actors_num_cpus_{actor_cpus}"] = {
            "actors_ready_of_4": len(ready),
            "builds_done_of_4": len(done),
            "builds_wall_s": round(time.perf_counter() - t, 2) if not not_done else None,
        }
        ray.shutdown()
    return out


def kill_during_calls(how: str, max_task_retries: int, calls: int = 400) -> dict:
    """Kill the actor after 100 calls of a sync loop; record what the loop saw.

    Back = the first call answered by the new process (ray.kill returns before
    the process is gone, so a call right after it may still be answered by the
    old one)."""
    actor = Shard.options(max_restarts=-1, max_task_retries=max_task_retries).remote()
    first_pid = ray.get(actor.pid.remote())
    errors: dict[str, int] = {}
    back_s = None
    slowest_s = 0.0
    for i in range(calls):
        if i == 100:
            killed_at = time.perf_counter()
            if how == "ray.kill":
                ray.kill(actor, no_restart=False)
            else:
                os.kill(first_pid, signal.SIGKILL)
        t = time.perf_counter()
        try:
            pid = ray.get(actor.pid.remote(), timeout=60)
        except Exception as e:  # noqa: BLE001 - the class is what is measured
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            continue
        slowest_s = max(slowest_s, time.perf_counter() - t)
        if pid != first_pid and back_s is None:
            back_s = time.perf_counter() - killed_at
    ray.kill(actor, no_restart=True)
    return {"errors": errors, "back_after_kill_s": back_s and round(back_s, 3),
            "slowest_successful_call_s": round(slowest_s, 3)}


def in_flight_kill(how: str, max_task_retries: int) -> dict:
    """Kill the actor while a 1 s call runs on it."""
    actor = Shard.options(max_restarts=-1, max_task_retries=max_task_retries).remote()
    pid = ray.get(actor.pid.remote())
    ref = actor.sleep.remote(1.0)
    time.sleep(0.3)
    t = time.perf_counter()
    if how == "ray.kill":
        ray.kill(actor, no_restart=False)
    else:
        os.kill(pid, signal.SIGKILL)
    try:
        ray.get(ref, timeout=60)
        result = "returned (retried)"
    except Exception as e:  # noqa: BLE001
        result = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    out = {"in_flight_call": result, "resolved_after_s": round(time.perf_counter() - t, 3)}
    ray.kill(actor, no_restart=True)
    return out


def section_faults(args) -> dict:
    ray.init(**RAY_INIT)
    out = {}
    for how in ("ray.kill", "SIGKILL"):
        for retries in (0, -1):
            key = f"{how}, max_task_retries={retries}"
            out[key] = {"loop": [kill_during_calls(how, retries) for _ in range(args.repeats)],
                        "in_flight": [in_flight_kill(how, retries) for _ in range(args.repeats)]}
    # No restarts: the handle is dead for good.
    actor = Shard.options(max_restarts=0).remote()
    ray.get(actor.ping.remote())
    ray.kill(actor)
    try:
        ray.get(actor.ping.remote(), timeout=30)
    except Exception as e:  # noqa: BLE001
        out["max_restarts=0 after ray.kill"] = {
            "error": type(e).__name__,
            "message": str(e).splitlines()[0][:160]}
    for cls in (ray.exceptions.ActorUnavailableError, ray.exceptions.ActorDiedError):
        out[f"{cls.__name__}_mro"] = [c.__name__ for c in cls.__mro__ if c.__module__.startswith("ray")]
    ray.shutdown()
    return out


def section_connect(args) -> dict:
    ray_bin = pathlib.Path(sys.executable).with_name("ray")
    head_dir = tempfile.mkdtemp(prefix="ray-head-", dir="/tmp")
    port = 6390
    t = time.perf_counter()
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false",
         f"--object-store-memory={256 * 2**20}", f"--temp-dir={head_dir}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out = {}
    try:
        # The head takes a moment to listen; connect until it answers.
        deadline = time.perf_counter() + 60
        while True:
            try:
                ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
                break
            except (ConnectionError, RuntimeError):
                if time.perf_counter() > deadline:
                    raise
                time.sleep(0.5)
        ray.get(Shard.remote().ping.remote())
        out["head_start_to_first_call_s"] = round(time.perf_counter() - t, 2)
        ray.shutdown()
        t = time.perf_counter()
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
        out["connect_to_running_head_s"] = round(time.perf_counter() - t, 2)
        out["cluster_resources"] = {k: v for k, v in ray.cluster_resources().items()
                                    if not k.startswith("node:")}
        ray.shutdown()
    finally:
        # SIGTERM to `ray start --block` ends the processes it started.
        t = time.perf_counter()
        head.terminate()
        head.wait(timeout=60)
        out["head_terminate_s"] = round(time.perf_counter() - t, 2)
        time.sleep(2)
        leftover = subprocess.run(["pgrep", "-f", head_dir], capture_output=True, text=True).stdout.split()
        out["processes_left_after_terminate"] = len(leftover)
        shutil.rmtree(head_dir, ignore_errors=True)
    return out


SECTIONS = {"startup": section_startup, "memory": section_memory, "latency": section_latency,
            "scheduling": section_scheduling, "faults": section_faults, "connect": section_connect}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="kills per fault case")
    parser.add_argument("--output", type=pathlib.Path,
                        default=ROOT / "bench" / "results" / "distributed" / "ray_overhead.json")
    args = parser.parse_args()
    report = {"ray_version": ray.__version__, "python": sys.version.split()[0],
              "cpus": os.cpu_count(), "ray_init": {k: v for k, v in RAY_INIT.items() if k != "_temp_dir"},
              "env": {k: os.environ[k] for k in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
                                                 "RAY_USAGE_STATS_ENABLED", "RAY_AUTH_MODE")}}
    # Another build on the machine shows here; the latencies depend on it.
    report["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
    for name in args.sections.split(","):
        report[name] = SECTIONS[name](args)
        print(name, json.dumps(report[name], indent=1), file=sys.stderr, flush=True)
    report["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    shutil.rmtree(TEMP_DIR, ignore_errors=True)  # Ray's session logs
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
