#!/usr/bin/env python3
"""A simulated training run for dtask's examples: tqdm bars, eval-metric blocks and a JSON result.

It draws its bars with tqdm (in requirements.lock: the task files run it in the checkout's
.venv) and reports the loss on the bar with set_postfix. A learning rate of 1 or more diverges on purpose: the loss becomes NaN and
the run fails with a RuntimeError line, as a real training script would. The cnn model is
less stable: its effective learning rate is twice the given one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

from tqdm import tqdm

STABILITY = {"mlp": 1.0, "cnn": 2.0}


def bar(total: int, desc: str) -> tqdm:
    """The epoch's progress bar (dtask parses tqdm's lines into the task's live progress)."""
    return tqdm(total=total, desc=desc, mininterval=0.1, file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="steps per epoch")
    ap.add_argument("--step-time", type=float, default=0.05, help="seconds per step")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(f"{args.model}-{args.lr}-{args.seed}")
    print(f"training {args.model} with lr={args.lr} for {args.epochs} epochs "
          f"on GPUs {os.environ.get('CUDA_VISIBLE_DEVICES', 'none')}", flush=True)
    effective_lr = args.lr * STABILITY.get(args.model, 1.0)
    loss = 2.5
    metrics: dict[str, float] = {}
    for epoch in range(1, args.epochs + 1):
        pbar = bar(args.steps, f"Epoch {epoch}")
        for step in range(args.steps):
            time.sleep(args.step_time)
            if effective_lr >= 1.0:
                loss *= 1.0 + effective_lr
                if step >= args.steps // 2:
                    loss = math.nan
            else:
                loss = max(0.01, loss * (1 - args.lr * 2) + rng.uniform(-0.01, 0.01))
            pbar.update(1)
            pbar.set_postfix(loss=f"{loss:.4f}")
            if math.isnan(loss):
                pbar.close()
                print(f"RuntimeError: loss became NaN at epoch {epoch} step {step + 1} "
                      f"(learning rate {args.lr} is too high for {args.model})", flush=True)
                return 1
        pbar.close()
        accuracy = round(min(0.99, 1 - loss / 3 + rng.uniform(0, 0.02)), 4)
        metrics = {"epoch": epoch, "eval_loss": round(loss, 4), "eval_accuracy": accuracy}
        print("***** eval metrics *****", flush=True)
        for key, value in metrics.items():
            print(f"  {key:<16}= {value}", flush=True)
    result = {"model": args.model, "lr": args.lr, **metrics}
    path = os.environ.get("DTASK_RESULT_FILE")
    if path:
        with open(path, "w") as f:
            json.dump(result, f)
    print(f"done: {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
