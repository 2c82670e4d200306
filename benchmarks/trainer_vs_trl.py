"""Our reward-model trainer against TRL's ``RewardTrainer`` on the same triplets.

Both train all-MiniLM-L6-v2 with the same LoRA (r, alpha, dropout, target modules; the scalar
head trained in full), the same Bradley-Terry loss, epochs, batch size, learning rate, warmup,
gradient clipping and seed, on the same token ids: each ``(intent, trajectory)`` pair is
tokenized the way :class:`~armap_agents.RewardModel` does it (a text pair, the oldest steps cut
first to fit ``max_length``) and given to TRL pre-tokenized (``chosen_ids`` /
``rejected_ids``). TRL runs as its docs show it on a CPU, with two settings matched to ours:
fp32 (RewardConfig defaults to bf16) and no gradient checkpointing (RewardConfig turns it on;
our trainer does not use it). Backbone dropout is off in both (TRL's ``disable_dropout``).

What differs is the trainer itself:

* batches: ours draws each batch from a length bucket (50 batches' worth of examples sorted by
  length), so a batch's sequences have similar lengths; TRL's sampler is random, and its
  collator pads each batch to its longest member. The table counts real and padded tokens;
* pooling: our model mean-pools the last hidden states; TRL's ``BertForSequenceClassification``
  puts its head on BERT's pooler (a dense + tanh on the [CLS] token, which LoRA adapts too);
* validation accuracy is measured the same way for both, outside the timed training: each
  validation pair is scored once, positive against negative.

Data: random-policy episodes of Game of 24 (and, with ``--datasets game24,webshop``, of the
generated WebShop catalog), relabeled into hindsight triplets by the environment's own
relabeler, into ``benchmarks/runs/trainer_vs_trl/`` (reused by later runs); a seeded sample of
``--train`` training and ``--val`` validation triplets (validation tasks are disjoint from
training tasks). Each trainer runs in its own subprocess, one after the other, with the same
torch thread count, so peak memory (the kernel's ``VmHWM``) is per trainer. Install TRL (a
benchmark-only dependency) and run::

    pip install -e ".[bench]"
    python benchmarks/trainer_vs_trl.py                  # Game of 24: 1,500 / 500 triplets
    python benchmarks/trainer_vs_trl.py --quick          # smoke run: 128 / 64 triplets
    python benchmarks/trainer_vs_trl.py --datasets game24,webshop --webshop-train 600

Prints the command, the machine, the versions and a markdown table, and saves them with a PNG
under ``benchmarks/results/trainer_vs_trl.{md,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import figure_path, header, save_results

RUNS = Path(__file__).resolve().parent / "runs" / "trainer_vs_trl"
NAME = "trainer_vs_trl"
TRAINERS = ("ours", "trl")
LABELS = {"ours": "armap RewardTrainer", "trl": "TRL RewardTrainer"}
# per environment: episode length, max_length (as `armap quickstart` uses them), tasks explored
DATASETS = {
    "game24": {"title": "Game of 24", "max_steps": 10, "max_length": 128, "tasks": 260},
    "webshop": {"title": "WebShop", "max_steps": 15, "max_length": 256, "tasks": None},
}


# -- data ------------------------------------------------------------------------------------
def prepare_data(env: str, n_train: int, n_val: int, seed: int) -> Path:
    """Explore + relabel ``env`` (resumable), then write a seeded sample of the triplets."""
    from armap_agents import (
        ExploreConfig,
        RandomPolicy,
        RelabelSynthesizer,
        SynthesizeConfig,
        Triplet,
        explore,
        make_env_factory,
        make_relabeler,
        read_jsonl,
        synthesize,
        write_jsonl,
    )

    spec = DATASETS[env]
    run = RUNS / env
    run.mkdir(parents=True, exist_ok=True)
    synthesis = run / "synthesis"
    if not (synthesis / "triplets.train.jsonl").is_file():
        explore(
            RandomPolicy(),
            make_env_factory(env),
            run / "trajectories.jsonl",
            ExploreConfig(
                episodes_per_task=4, max_steps=spec["max_steps"], max_tasks=spec["tasks"], seed=seed
            ),
            progress=False,
        )
        synthesize(
            RelabelSynthesizer(make_relabeler(env)),
            run / "trajectories.jsonl",
            synthesis,
            SynthesizeConfig(val_fraction=0.25, seed=seed),
            progress=False,
        )
    train = read_jsonl(synthesis / "triplets.train.jsonl", Triplet)
    val = read_jsonl(synthesis / "triplets.val.jsonl", Triplet)
    if len(train) < n_train or len(val) < n_val:
        print(
            f"note: {env} has {len(train)} train / {len(val)} validation triplets; "
            f"asked for {n_train} / {n_val}, using what there is"
        )
    rng = random.Random(seed)
    sample = run / f"sample-{n_train}-{n_val}-{seed}"
    sample.mkdir(exist_ok=True)
    write_jsonl(sample / "train.jsonl", rng.sample(train, min(n_train, len(train))))
    write_jsonl(sample / "val.jsonl", rng.sample(val, min(n_val, len(val))))
    return sample


# -- measuring inside a worker ---------------------------------------------------------------
def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), in MiB."""
    with open("/proc/self/status", encoding="utf-8") as fh:
        kib = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    return kib / 1024


def _count_tokens(module, counts: dict[str, int]) -> None:
    """Count real and padded tokens of every forward pass that builds a graph (training)."""
    import torch

    def hook(_module, _args, kwargs):
        if torch.is_grad_enabled() and "attention_mask" in kwargs:
            mask = kwargs["attention_mask"]
            counts["real"] += int(mask.sum())
            counts["padded"] += mask.numel()
            counts["steps"] += 1

    module.register_forward_pre_hook(hook, with_kwargs=True)


def _pairwise_accuracy(scores: list[float], n: int) -> float:
    return sum(scores[i] > scores[n + i] for i in range(n)) / n


def worker(trainer: str, data: Path, args: argparse.Namespace) -> dict:
    """Train with one trainer; returns its measurements (run in its own process)."""
    import torch

    from armap_agents import (
        RewardModel,
        RewardModelConfig,
        RewardTrainer,
        RewardTrainerConfig,
        Triplet,
        read_jsonl,
    )
    from armap_agents.reward.train import pairwise_metrics
    from armap_agents.types import render_trajectory

    torch.set_num_threads(args.threads)
    train = read_jsonl(data / "train.jsonl", Triplet)
    val = read_jsonl(data / "val.jsonl", Triplet)
    model_cfg = RewardModelConfig(max_length=args.max_length, seed=args.seed)
    train_cfg = RewardTrainerConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        bucket_batches=args.bucket_batches,
    )
    counts = {"real": 0, "padded": 0, "steps": 0}
    started, cpu = time.perf_counter(), time.process_time()
    if trainer == "ours":
        model = RewardModel.create(model_cfg)
        _count_tokens(model.module, counts)
        result = RewardTrainer(model, train_cfg).train(train, (), progress=False)
        loss = result.history[-1].train_loss
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        model.module.eval()
        val_started = time.perf_counter()
        accuracy, _ = pairwise_metrics(model, val, train_cfg.eval_batch_size)
    else:
        model, tokenizer, loss = _train_trl(train, model_cfg, train_cfg, counts)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        val_started = time.perf_counter()
        accuracy = _trl_accuracy(model, tokenizer, val, model_cfg, render_trajectory)
    return {
        "trainer": trainer,
        "train_examples": len(train),
        "val_examples": len(val),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "val_seconds": time.perf_counter() - val_started,
        "peak_rss_mib": _peak_rss_mib(),
        "val_accuracy": accuracy,
        "final_epoch_loss": loss,
        "threads": torch.get_num_threads(),
        **{f"{k}_tokens" if k != "steps" else k: v for k, v in counts.items()},
    }


def _encode(tokenizer, triplets, model_cfg, render) -> tuple[list, list]:
    """Token ids of (intent, positive) and (intent, negative), by RewardModel's own
    ``encode_pairs``."""
    from armap_agents.reward.model import encode_pairs

    intents, width = [t.intent for t in triplets], model_cfg.max_length
    pos = encode_pairs(tokenizer, intents, [render(t.positive) for t in triplets], width, pad=False)
    neg = encode_pairs(tokenizer, intents, [render(t.negative) for t in triplets], width, pad=False)
    return pos["input_ids"], neg["input_ids"]


def _train_trl(train, model_cfg, train_cfg, counts):
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType
    from torch import nn
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from armap_agents.reward.model import resolve_backbone
    from armap_agents.types import render_trajectory

    source = resolve_backbone(model_cfg.backbone)
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.padding_side, tokenizer.truncation_side = "right", "left"
    torch.manual_seed(model_cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    # the same LoRA targets as RewardModel: every nn.Linear of the backbone (query, key, value,
    # dense); the classification head is trained in full (modules_to_save)
    backbone = model.base_model.named_modules()
    targets = sorted({n.rsplit(".", 1)[-1] for n, m in backbone if isinstance(m, nn.Linear)})
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=model_cfg.lora_r,
        lora_alpha=model_cfg.lora_alpha,
        lora_dropout=model_cfg.lora_dropout,
        target_modules=targets,
        modules_to_save=["classifier"],
    )
    pos, neg = _encode(tokenizer, train, model_cfg, render_trajectory)
    dataset = Dataset.from_dict({"chosen_ids": pos, "rejected_ids": neg})
    with tempfile.TemporaryDirectory() as out:
        config = RewardConfig(
            output_dir=out,
            num_train_epochs=train_cfg.epochs,
            per_device_train_batch_size=train_cfg.batch_size,
            learning_rate=train_cfg.learning_rate,
            weight_decay=train_cfg.weight_decay,
            warmup_steps=train_cfg.warmup_ratio,  # a float < 1 is a ratio
            lr_scheduler_type="linear",
            max_grad_norm=train_cfg.max_grad_norm,
            seed=train_cfg.seed,
            max_length=model_cfg.max_length,
            bf16=False,
            gradient_checkpointing=False,
            disable_dropout=True,
            use_cpu=True,
            save_strategy="no",
            report_to="none",
            logging_steps=10_000,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = RewardTrainer(
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
        )
        _count_tokens(trainer.model, counts)
        output = trainer.train()
    return trainer.model, tokenizer, output.training_loss


def _trl_accuracy(model, tokenizer, val, model_cfg, render, batch_size: int = 128) -> float:
    """Pairwise accuracy of a TRL-trained model on the validation pairs, batched by length and
    fed as TRL trains (input ids and attention mask)."""
    import torch

    pos, neg = _encode(tokenizer, val, model_cfg, render)
    rows = pos + neg
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    scores = [0.0] * len(rows)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer.pad({"input_ids": [rows[i] for i in chunk]}, return_tensors="pt")
            logits = model(**batch).logits.squeeze(-1).tolist()
            for i, s in zip(chunk, logits, strict=True):
                scores[i] = float(s)
    return _pairwise_accuracy(scores, len(val))


# -- the comparison --------------------------------------------------------------------------
def run_worker(trainer: str, data: Path, args: argparse.Namespace, max_length: int) -> dict:
    """One trainer in a fresh interpreter; its measurements come back as JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            trainer,
            "--data",
            str(data),
            "--result",
            result.name,
            "--max-length",
            str(max_length),
            "--threads",
            str(args.threads),
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
            "--lr",
            str(args.lr),
            "--seed",
            str(args.seed),
            "--bucket-batches",
            str(args.bucket_batches),
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        measured = json.loads(Path(result.name).read_text())
    measured["process_seconds"] = time.perf_counter() - started
    return measured


def _load_average() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def markdown(rows: list[tuple[str, dict, dict]], args: argparse.Namespace, loads) -> str:
    lines = [
        f"# Reward-model trainer vs TRL's RewardTrainer\n\n{header(('trl', 'datasets'))}  ",
        f"torch threads: {args.threads}; load average (1/5/15 min) before / after: "
        f"{loads[0]} / {loads[1]}\n",
        f"all-MiniLM-L6-v2, LoRA r=16, alpha=32, on query/key/value/dense; {args.epochs} "
        f"epoch(s), batch {args.batch_size} pairs, lr {args.lr:g}, warmup 6%, fp32, backbone "
        "dropout off, no gradient checkpointing, same token ids, seed "
        f"{args.seed}; ours with length buckets of {args.bucket_batches} batches.\n",
        "| data | trainer | train pairs | training (s) | CPU (s) | time vs ours | peak memory "
        "(MiB) | val pairs | val accuracy | real tokens | padded tokens | padding |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for title, ours, trl in rows:
        for r in (ours, trl):
            pad_share = 1 - r["real_tokens"] / r["padded_tokens"] if r["padded_tokens"] else 0.0
            lines.append(
                f"| {title} | {LABELS[r['trainer']]} | {r['train_examples']:,} | "
                f"{r['seconds']:.0f} | {r['cpu_seconds']:.0f} | "
                f"{r['seconds'] / ours['seconds']:.2f}x | {r['peak_rss_mib']:,.0f} | "
                f"{r['val_examples']:,} | {r['val_accuracy']:.1%} | {r['real_tokens']:,} | "
                f"{r['padded_tokens']:,} | {pad_share:.1%} |"
            )
    lines.append(
        "\ntraining (s): wall time of model setup + training (LoRA wrapping, tokenizing, all "
        "epochs), without imports and without validation; CPU (s): its CPU time over all "
        "threads (steadier than wall time on a shared machine); peak memory: the process's "
        "VmHWM; padded tokens: batch width x rows summed over the training steps (what the "
        "model computes), of which real tokens are not padding."
    )
    return "\n".join(lines)


def plot(rows: list[tuple[str, dict, dict]]) -> Path:
    from armap_agents._plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    metrics = (
        ("seconds", "training wall time (s)", "{:.0f}"),
        ("cpu_seconds", "training CPU time (s)", "{:.0f}"),
        ("peak_rss_mib", "peak memory (MiB)", "{:,.0f}"),
        ("val_accuracy", "validation pairwise accuracy", "{:.1%}"),
    )
    width = 0.38
    for ax, (key, title, fmt) in zip(axes, metrics, strict=True):
        for k, trainer in enumerate(TRAINERS):
            values = [(ours if trainer == "ours" else trl)[key] for _, ours, trl in rows]
            xs = [i + (k - 0.5) * width for i in range(len(rows))]
            bars = ax.bar(xs, values, width, label=LABELS[trainer], color=f"C{k}")
            ax.bar_label(bars, [fmt.format(v) for v in values], fontsize=8)
        ax.set_xticks(range(len(rows)), [title_ for title_, _, _ in rows])
        ax.set_title(title, fontsize=10)
        if key == "val_accuracy":
            ax.set_ylim(0, 1.1)
            ax.axhline(0.5, color="#888", linestyle="--", linewidth=1)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Reward-model training on the same triplets: ours vs TRL", fontsize=11)
    return save_figure(fig, figure_path(NAME))


def main() -> int:
    from armap_agents.reward.train import RewardTrainerConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="game24", help="comma-separated: game24, webshop")
    parser.add_argument("--train", type=int, default=1500, help="Game of 24 training triplets")
    parser.add_argument("--val", type=int, default=500, help="Game of 24 validation triplets")
    parser.add_argument("--webshop-train", type=int, default=600)
    parser.add_argument("--webshop-val", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--bucket-batches",
        type=int,
        default=RewardTrainerConfig().bucket_batches,
        help="ours: batches' worth of examples sorted by length together (1 = no bucketing)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 128 / 64 triplets")
    # a worker's own arguments (the script calls itself once per trainer)
    parser.add_argument("--worker", choices=TRAINERS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--max-length", type=int, default=128, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.result.write_text(json.dumps(worker(args.worker, args.data, args)))
        return 0
    try:
        import trl  # noqa: F401
    except ImportError:
        sys.exit('this benchmark needs TRL: pip install -e ".[bench]"')
    sizes = {
        "game24": (args.train, args.val),
        "webshop": (args.webshop_train, args.webshop_val),
    }
    if args.quick:
        sizes = {env: (128, 64) for env in sizes}
    envs = [e.strip() for e in args.datasets.split(",") if e.strip()]
    unknown = sorted(set(envs) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data set(s) {unknown}: choose from {sorted(DATASETS)}")
    loads = [_load_average()]
    rows = []
    for env in envs:
        data = prepare_data(env, *sizes[env], args.seed)
        max_length = DATASETS[env]["max_length"]
        measured = {}
        for trainer in TRAINERS:
            print(f"[{env}] training with {LABELS[trainer]} ...", flush=True)
            measured[trainer] = run_worker(trainer, data, args, max_length)
            m = measured[trainer]
            print(
                f"[{env}] {trainer}: {m['seconds']:.0f} s, val accuracy {m['val_accuracy']:.1%}, "
                f"peak {m['peak_rss_mib']:,.0f} MiB",
                flush=True,
            )
        rows.append((DATASETS[env]["title"], measured["ours"], measured["trl"]))
    loads.append(_load_average())
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / "measurements.json").write_text(json.dumps(rows, indent=2))
    save_results(NAME, markdown(rows, args, loads))
    print(f"saved {plot(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
