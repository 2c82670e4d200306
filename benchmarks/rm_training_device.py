"""Reward-model training on the CPU and on a GPU, in float32 and bf16: time per 1,000 pairs and
accuracy.

The same reward model (``--backbone``, ``--max-length``, LoRA r=16 on every linear layer,
WebShop's trajectory view fitted to the window) is trained the same way (``--epochs``, batch
``--batch-size`` pairs, lr, seed) on the same WebShop triplets on each device asked for that
is here: ``cpu``, and ``cuda`` when torch sees a GPU, in each precision of ``--precisions``
(``float32``; ``bfloat16``: autocast, the head and the loss in float32, what ``"auto"`` picks on
a GPU and on a CPU with native bf16), with and without gradient checkpointing as
``--checkpointing`` says. Where there is no GPU, the table says so and shows the CPU rows only.

Data: random-policy WebShop episodes relabeled in hindsight by WebShop's relabeler, prepared
(and reused) by ``benchmarks/trainer_vs_trl.py``'s ``prepare_data`` under
``benchmarks/runs/trainer_vs_trl/webshop``; a seeded sample of ``--train`` / ``--val``
triplets (validation tasks are disjoint from training tasks). Each variant runs in its own
interpreter, one after the other, so its peak memory is its own.

Run (offline)::

    python benchmarks/rm_training_device.py                        # MiniLM, 512 tokens
    python benchmarks/rm_training_device.py --checkpointing off,on --precisions bfloat16
    python benchmarks/rm_training_device.py --backbone smollm2 --max-length 2048 --train 200
    python benchmarks/rm_training_device.py --quick                # 64 / 32 pairs, a smoke run

Prints the command, the machine, the versions and a markdown table; saves them under
``benchmarks/results/rm_training_device.md`` (``--quick``: under
``benchmarks/runs/rm_training_device/`` only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import header, save_results
from trainer_vs_trl import prepare_data

NAME = "rm_training_device"
RUNS = Path(__file__).resolve().parent / "runs" / NAME
ENV = "webshop"


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), in MiB."""
    with open("/proc/self/status", encoding="utf-8") as fh:
        kib = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    return kib / 1024


def worker(args: argparse.Namespace) -> dict:
    """Create, train and validate one reward model on ``args.device`` (in its own process)."""
    import torch

    from armap_agents import (
        RewardModel,
        RewardModelConfig,
        RewardTrainer,
        RewardTrainerConfig,
        Triplet,
        read_jsonl,
    )
    from armap_agents.environments.registry import default_registry
    from armap_agents.reward.train import pairwise_metrics

    torch.set_num_threads(args.threads)
    train = read_jsonl(args.data / "train.jsonl", Triplet)
    val = read_jsonl(args.data / "val.jsonl", Triplet)
    started = time.perf_counter()
    model = RewardModel.create(
        RewardModelConfig(
            backbone=args.backbone,
            max_length=args.max_length,
            seed=args.seed,
            view=default_registry().reward_view(ENV),
        ),
        device=args.device,
        precision=args.precision,
    )
    setup = time.perf_counter() - started
    texts = [model.render(t.positive) for t in train] + [model.render(t.negative) for t in train]
    lengths = [
        len(ids)
        for ids in model.encode([t.intent for t in train] * 2, texts, pad=False)["input_ids"]
    ]
    settings = RewardTrainerConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        gradient_accumulation_steps=args.grad_accum,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    if model.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started, cpu = time.perf_counter(), time.process_time()
    result = RewardTrainer(model, settings).train(train, (), progress=False)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    accuracy, _ = pairwise_metrics(model, val)
    scoring = time.perf_counter() - started
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if model.device.type == "cuda"
        else _peak_rss_mib()
    )
    return {
        "device": str(model.device),
        "precision": args.precision,
        "gradient_checkpointing": args.gradient_checkpointing,
        "train_pairs": len(train),
        "val_pairs": len(val),
        "mean_tokens": sum(lengths) / len(lengths),
        "at_window": sum(n >= args.max_length for n in lengths) / len(lengths),
        "setup_seconds": setup,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "scoring_seconds": scoring,
        "peak_mib": peak,
        "peak_kind": "GPU allocated" if model.device.type == "cuda" else "process RSS",
        "final_loss": result.history[-1].train_loss,
        "val_accuracy": accuracy,
        "threads": torch.get_num_threads(),
    }


def run_variant(
    args: argparse.Namespace, data: Path, device: str, precision: str, checkpointing: bool
) -> dict:
    """One variant in a fresh interpreter; its measurements come back as JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--data",
            str(data),
            "--result",
            result.name,
            "--device",
            device,
            "--precision",
            precision,
            "--backbone",
            args.backbone,
            "--max-length",
            str(args.max_length),
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
            "--grad-accum",
            str(args.grad_accum),
            "--lr",
            str(args.lr),
            "--seed",
            str(args.seed),
            "--threads",
            str(args.threads),
        ]
        if checkpointing:
            command.append("--gradient-checkpointing")
        subprocess.run(command, check=True)
        return json.loads(Path(result.name).read_text())


def _run_and_say(
    args: argparse.Namespace, data: Path, device: str, precision: str, checkpointing: bool
) -> dict:
    print(
        f"[{device}, {precision}, checkpointing {'on' if checkpointing else 'off'}] training ...",
        flush=True,
    )
    row = run_variant(args, data, device, precision, checkpointing)
    print(
        f"  {row['seconds']:.0f} s for {row['train_pairs']} pairs "
        f"({row['seconds'] / row['train_pairs'] * 1000:,.0f} s per 1,000), val "
        f"accuracy {row['val_accuracy']:.1%}, peak {row['peak_mib']:,.0f} MiB",
        flush=True,
    )
    return row


def gpu_note() -> str | None:
    """Why there are no GPU rows, or None when torch sees a CUDA GPU."""
    import torch

    if torch.cuda.is_available():
        return None
    build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
    return f"no GPU on this machine: torch sees no CUDA device ({build}); CPU rows only"


def markdown(rows: list[dict], args: argparse.Namespace, note: str | None, loads) -> str:
    cpu = {
        r["gradient_checkpointing"]: r
        for r in rows
        if r["device"] == "cpu" and r["precision"] == "float32"
    }
    lines = [
        f"# Reward-model training: CPU vs GPU, float32 vs bf16\n\n{header()}  ",
        f"torch threads (CPU): {args.threads}; load average (1/5/15 min) before / after: "
        f"{loads[0]} / {loads[1]}\n",
        f"{args.backbone}, max length {args.max_length} tokens, LoRA r=16 on every linear "
        f"layer, WebShop's view; {args.epochs} epoch(s), batch {args.batch_size} pairs "
        f"(in {args.grad_accum} micro-batch(es)), lr {args.lr:g}, seed {args.seed}; "
        "bfloat16: autocast (the pooled state, the head and the loss in float32). Speed-up: "
        "against the CPU in float32 with the same checkpointing.\n",
    ]
    if note:
        lines.append(f"**{note}.**\n")
    lines += [
        "| device | precision | gradient checkpointing | train pairs | tokens per text (mean) "
        "| at the window | training (s) | s per 1,000 pairs | speed-up vs CPU | "
        "peak memory (MiB) | scoring s per 1,000 pairs | val pairs | val accuracy |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per_1000 = r["seconds"] / r["train_pairs"] * 1000
        base = cpu.get(r["gradient_checkpointing"])
        speedup = (
            f"{base['seconds'] / base['train_pairs'] / (r['seconds'] / r['train_pairs']):.1f}x"
            if base
            else "–"
        )
        lines.append(
            f"| {r['device']} | {r['precision']} | "
            f"{'on' if r['gradient_checkpointing'] else 'off'} | "
            f"{r['train_pairs']:,} | {r['mean_tokens']:.0f} | {r['at_window']:.0%} | "
            f"{r['seconds']:.0f} | {per_1000:,.0f} | {speedup} | "
            f"{r['peak_mib']:,.0f} ({r['peak_kind']}) | "
            f"{r['scoring_seconds'] / r['val_pairs'] * 1000:,.1f} | {r['val_pairs']:,} | "
            f"{r['val_accuracy']:.1%} |"
        )
    lines.append(
        "\ntraining (s): wall time of the training (tokenizing and all epochs), without the "
        "model's loading and without validation; s per 1,000 pairs: that time scaled to 1,000 "
        "training pairs; at the window: the share of texts cut to the max length; scoring: "
        "validation pairs (two texts each) scored in inference mode; peak memory: the "
        "process's VmHWM on the CPU, torch's peak allocation on a GPU."
    )
    return "\n".join(lines)


def _load_average() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="all-MiniLM-L6-v2")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--train", type=int, default=None, help="training pairs (1,000)")
    parser.add_argument("--val", type=int, default=None, help="validation pairs (200)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--devices", default="cpu,cuda", help="those of them that are here")
    parser.add_argument("--checkpointing", default="off", help="off, on, or off,on")
    parser.add_argument(
        "--precisions", default="float32,bfloat16", help="float32, bfloat16 or both"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="64 / 32 pairs, not saved")
    # a worker's own arguments (the script calls itself once per variant)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--gradient-checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.result.write_text(json.dumps(worker(args)))
        return 0
    n_train = args.train or (64 if args.quick else 1000)
    n_val = args.val or (32 if args.quick else 200)
    checkpointing = {"off": [False], "on": [True], "off,on": [False, True]}.get(args.checkpointing)
    if checkpointing is None:
        parser.error("--checkpointing: off, on, or off,on")
    note = gpu_note()
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if note is not None:
        devices = [d for d in devices if not d.startswith("cuda")]
        print(note, flush=True)
    data = prepare_data(ENV, n_train, n_val, args.seed)
    loads = [_load_average()]
    rows = []
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not precisions or not set(precisions) <= {"float32", "bfloat16"}:
        parser.error("--precisions: float32, bfloat16 or float32,bfloat16")
    for device in devices:
        for precision in precisions:
            for on in checkpointing:
                rows.append(_run_and_say(args, data, device, precision, on))
    loads.append(_load_average())
    table = markdown(rows, args, note, loads)
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / "measurements.json").write_text(json.dumps(rows, indent=2))
    if args.quick:
        (RUNS / f"{NAME}.md").write_text(table + "\n", encoding="utf-8")
        print(table)
    else:
        save_results(NAME, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
