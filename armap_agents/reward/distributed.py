"""Reward-model training on several processes: DistributedDataParallel through ``accelerate``.

One process trains as it always has. Under a launcher (``torchrun``, ``accelerate launch``, or
:func:`run_on_devices`, which ``armap train --devices N`` uses) the environment names the
process group (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``);
:func:`join_processes` reads it, joins the group (gloo on CPU, NCCL on CUDA, one GPU per
process) and gives the trainer a :class:`Processes`: which share of each batch is this
process's, how to wrap the model for DDP, and how to add numbers up across processes.

Every process draws the same shuffled batches from the same seed and takes its contiguous
share of each one; the gradients are all-reduced, so ``batch_size`` stays the pairs of one
optimizer step, whatever the number of processes, and an N-process training takes the same
steps as a single process, equal up to float rounding.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from armap_agents.errors import ArmapError, ConfigError
from armap_agents.reward.model import resolve_device

__all__ = [
    "Processes",
    "check_devices",
    "join_processes",
    "launched_processes",
    "launched_rank",
    "run_on_devices",
]

T = TypeVar("T")
S = TypeVar("S")


def launched_processes() -> int:
    """How many processes a launcher started for this training (``WORLD_SIZE``; 1: none)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError as exc:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from exc


def launched_rank() -> int:
    """This process's rank in the launcher's group (``RANK``; 0 without a launcher)."""
    return int(os.environ.get("RANK", "0")) if launched_processes() > 1 else 0


def _process_device(device: str) -> torch.device:
    """The device type of every process of a group: one GPU each on CUDA, else the CPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(
            f"device {device!r} with several processes: use auto, cpu or cuda (each process "
            "takes the GPU of its local rank)"
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return resolve_device(device)  # "cuda" where torch sees none is a ConfigError


def check_devices(devices: int | None, device: str = "auto") -> int:
    """The number of processes to train on: ``devices`` (None: 1, or the launcher's), checked
    against the launcher and, on CUDA, the GPUs; a :class:`ConfigError` names the mistake."""
    launched = launched_processes()
    if devices is None:
        devices = launched
    if devices < 1:
        raise ConfigError(f"devices must be at least 1, got {devices}")
    if launched > 1 and devices != launched:
        raise ConfigError(
            f"a launcher started {launched} processes (WORLD_SIZE) but devices is {devices}: "
            "leave --devices out under torchrun / accelerate launch"
        )
    if devices > 1 and launched == 1:
        target = _process_device(device)
        gpus = torch.cuda.device_count() if target.type == "cuda" else 0
        if target.type == "cuda" and devices > gpus:
            raise ConfigError(
                f"{devices} processes on CUDA need {devices} GPUs; torch sees {gpus}: use "
                f"--devices {gpus} or fewer, or --device cpu"
            )
    return devices


@dataclass(frozen=True)
class Processes:
    """The processes that train together, as seen from one of them."""

    device: torch.device
    """This process's device (``cuda:LOCAL_RANK`` in a CUDA group)."""
    rank: int = 0
    count: int = 1
    accelerator: Any = None
    """The ``accelerate.Accelerator`` of a group (None: a single process)."""

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes files and reports progress."""
        return self.rank == 0

    def share(self, items: Sequence[S]) -> list[S]:
        """This process's contiguous share of ``items`` (sizes differ by at most one; a
        share is empty when there are fewer items than processes)."""
        n = len(items)
        return list(items[self.rank * n // self.count : (self.rank + 1) * n // self.count])

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` in DistributedDataParallel (through ``accelerate``) for a group, itself
        for one process. Its buffers are constants, so they are not broadcast per forward:
        the only collective of a step is the gradients' all-reduce in its last backward."""
        if self.accelerator is None:
            return module
        with warnings.catch_warnings():  # torch 2.13 renames it; accelerate passes the old name
            warnings.filterwarnings("ignore", "`broadcast_buffers` is deprecated", FutureWarning)
            return self.accelerator.prepare_model(module, device_placement=False)

    def no_sync(self, net: torch.nn.Module) -> contextlib.AbstractContextManager:
        """Accumulate gradients locally in backward passes under this (no all-reduce)."""
        if self.accelerator is None:
            return contextlib.nullcontext()
        return self.accelerator.no_sync(net)

    def sum(self, values: Sequence[float]) -> list[float]:
        """``values`` added up element-wise across the processes (float64)."""
        if self.accelerator is None:
            return [float(v) for v in values]
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def wait(self) -> None:
        """Wait until every process has reached this point."""
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()


def join_processes(device: str = "auto") -> Processes:
    """This process's place in the launcher's group (see the module docstring), or a single
    process on ``device`` (:func:`~armap_agents.reward.model.resolve_device`) without one."""
    if launched_processes() == 1:
        return Processes(resolve_device(device))
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    target = _process_device(device)
    accelerator = Accelerator(
        cpu=target.type == "cpu",
        mixed_precision="no",  # the model's own precision setting autocasts its forward
        # the buffers are constants; a backbone's pooler (its LoRA) may be left unused
        kwargs_handlers=[
            DistributedDataParallelKwargs(broadcast_buffers=False, find_unused_parameters=True)
        ],
    )
    return Processes(
        accelerator.device,
        rank=accelerator.process_index,
        count=accelerator.num_processes,
        accelerator=accelerator,
    )


def _worker(
    rank: int,
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    count: int,
    device: str,
    rendezvous: str,
    results: Any,
) -> None:
    """One spawned process of :func:`run_on_devices`: the group's environment and process
    group, then ``fn``; rank 0 sends back its result, any rank its :class:`ArmapError`."""
    threads = max(1, (os.cpu_count() or 1) // count)  # the CPU's cores, shared out
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(count),
        LOCAL_WORLD_SIZE=str(count),
        MASTER_ADDR="127.0.0.1",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(threads)),
    )
    loopback = "lo0" if sys.platform == "darwin" else "lo"  # one machine: talk on loopback
    os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback)
    os.environ.setdefault("NCCL_SOCKET_IFNAME", loopback)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    cuda = _process_device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    # the rendezvous is a file, not a server; accelerate takes the group as it finds it
    torch.distributed.init_process_group(
        "nccl" if cuda else "gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=count
    )
    try:
        result = fn(**kwargs)
    except ArmapError as exc:  # a user's mistake: one line in the parent, not N tracebacks
        results.put(("error", exc))
        raise SystemExit(1) from None
    finally:
        torch.distributed.destroy_process_group()
    if rank == 0:
        results.put(("result", result))


def run_on_devices(
    fn: Callable[..., T], kwargs: dict[str, Any], devices: int, device: str = "auto"
) -> T:
    """``fn(**kwargs)`` in ``devices`` spawned processes of one group on this machine, one
    GPU each on CUDA (NCCL), else on the CPU (gloo), returning rank 0's result; one process:
    a plain call. The processes meet through a file and talk over the loopback interface (no
    port is opened to the network). ``fn`` must be importable (a module's function) and
    joins the group with :func:`join_processes`. An :class:`ArmapError` in a process is
    raised here (the other processes are stopped); any other failure is an
    :class:`ArmapError` naming it."""
    if devices == 1:
        return fn(**kwargs)
    import torch.multiprocessing as mp

    results = mp.get_context("spawn").SimpleQueue()
    with tempfile.TemporaryDirectory(prefix="armap-rendezvous-") as folder:
        group = mp.start_processes(
            _worker,
            args=(fn, kwargs, devices, device, os.path.join(folder, "store"), results),
            nprocs=devices,
            join=False,
            start_method="spawn",
        )
        received: list[tuple[str, Any]] = []
        try:
            while True:
                while not results.empty():  # drained while waiting: a full pipe blocks
                    received.append(results.get())
                try:
                    if group.join(timeout=0.2):
                        break
                except (mp.ProcessExitedException, mp.ProcessRaisedException) as exc:
                    # a process failed, and join stopped the others
                    while not results.empty():
                        received.append(results.get())
                    errors = [value for kind, value in received if kind == "error"]
                    if errors:
                        raise errors[0] from None
                    raise ArmapError(
                        f"training process {exc.error_index} of {devices} failed: "
                        f"{_last_error(exc)}"
                    ) from exc
        finally:
            _stop(group.processes)
    while not results.empty():
        received.append(results.get())
    for kind, value in received:
        if kind == "result":
            return value
    raise ArmapError("the training processes ended without a result")


def _last_error(exc: Exception) -> str:
    """The ``SomeError: message`` line of a failed process's traceback, else its first line."""
    lines = str(exc).strip().splitlines()
    found = [line for line in lines if re.match(r"[\w.]+(Error|Exception): ", line)]
    return (found or lines or [type(exc).__name__])[-1]


def _stop(processes: Sequence[Any]) -> None:
    """Terminate what is still running (an interrupt, a failed peer), then reap it."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
