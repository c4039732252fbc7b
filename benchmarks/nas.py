"""Architecture search at equal CPU compute: DARTS, REINFORCE, regularised evolution and random
search on the bundled digits, next to a hand-designed CNN.

Each (method, seed) run gets the same search budget in CPU seconds of its own process (one
torch thread), so the comparison stays fair when other work shares the machine; the
architecture it picks (DARTS: the derived cell; the others: the best trial by validation
accuracy) is then retrained from scratch with the same recipe and measured once on the test
split. Runs go two at a time in worker processes (one thread each), so the whole table takes a
few minutes on two cores:

    python benchmarks/nas.py                  # 3 seeds, 30 s of search per run
    python benchmarks/nas.py --search-seconds 10 --seeds 2 --retrain-epochs 5   # a quick look
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

BASELINE_CNN = {"kind": "cnn", "layers": 3, "activation": "relu", "width_0": 32, "kernel_0": 3,
                "width_1": 64, "kernel_1": 3, "width_2": 64, "kernel_2": 3}
METHODS = ("darts", "reinforce", "evolution", "random", "baseline")


def run(job: tuple[str, int, argparse.Namespace]) -> dict:
    import torch

    torch.set_num_threads(1)
    import tunelab as tl
    from tunelab import nas

    method, seed, args = job
    data = nas.digits(batch_size=64, seed=0)  # one split for all: every method meets the same test set
    space = nas.cell_space(args.nodes)
    started = time.process_time()
    trials = 0
    if method == "baseline":
        config = BASELINE_CNN
    elif method == "darts":
        found = nas.darts_search(data, epochs=args.darts_epochs, order=args.darts_order, nodes=args.nodes,
                                 channels=args.channels, layers=args.layers, seed=seed,
                                 max_seconds=args.search_seconds, clock=time.process_time)
        config = found.genotype.to_config()
    else:
        searcher = {"reinforce": lambda: nas.ReinforceSearcher(space, seed=seed),
                    "evolution": lambda: nas.RegularizedEvolution(space, seed=seed, population=6, sample=3),
                    "random": lambda: "random"}[method]()
        objective = nas.ArchitectureObjective(data, epochs=args.trial_epochs, channels=args.channels,
                                              layers=args.layers)
        study = tl.create_study(space, metric="accuracy", mode="max", searcher=searcher, seed=seed)
        while time.process_time() - started < args.search_seconds:  # the last trial may overrun
            trial = study.ask()
            study.tell(trial, objective(trial.config, trial))
        config, trials = study.best.config, len(study.trials)
    searched = time.process_time() - started if method != "baseline" else 0.0
    result = nas.retrain(config, data, epochs=args.retrain_epochs, seed=seed, channels=args.channels,
                         layers=args.layers)
    size = sum(p.numel() for p in nas.train.build_network(config, data, args.channels, args.layers).parameters())
    return {"method": method, "seed": seed, "accuracy": result["accuracy"], "seconds": searched,
            "trials": trials, "parameters": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--search-seconds", type=float, default=30.0, help="search budget per run, CPU seconds")
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--trial-epochs", type=int, default=2, help="epochs per black-box trial")
    parser.add_argument("--darts-epochs", type=int, default=3)
    parser.add_argument("--darts-order", choices=["first", "second"], default="first")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [(method, seed, args) for method in METHODS for seed in range(args.seeds)]
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        rows = pool.map(run, jobs, chunksize=1)
    print(f"digits 8x8 (1078 train / 359 valid / 360 test), cells of {args.nodes} nodes, {args.layers} layers, "
          f"{args.channels} channels; search budget {args.search_seconds:g} CPU s per run (one thread); "
          f"retrain {args.retrain_epochs} epochs; {args.seeds} seeds")
    print(f"{'method':<12}{'test accuracy':>22}{'search cpu s':>14}{'trials':>8}{'params':>9}")
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        accuracies = [r["accuracy"] for r in mine]
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        label = {"darts": f"darts ({args.darts_order[0]}o)", "baseline": "hand CNN"}.get(method, method)
        print(f"{label:<12}{statistics.mean(accuracies):>14.4f} ± {spread:.4f}"
              f"{statistics.mean(r['seconds'] for r in mine):>14.1f}"
              f"{statistics.mean(r['trials'] for r in mine):>8.1f}"
              f"{statistics.mean(r['parameters'] for r in mine):>9.0f}")
    print(f"total wall time {time.monotonic() - started:.0f} s with {args.workers} worker processes")


if __name__ == "__main__":
    main()
