"""Tune a small PyTorch CNN by epochs with ASHA in promotion mode, on a GPU where there is one.

Each trial trains to its rung's budget and pauses there; its model, optimiser and epoch are
saved as a checkpoint (bytes from ``torch.save``) before every report, so when ASHA promotes it
the run goes on from where it paused instead of starting over. Each epoch reshuffles with a seed
of its own (the trial's seed and the epoch), so a run that paused and resumed trains exactly as
one that never paused. With ``--gpus 0,1`` the worker processes share out those GPUs, one each;
without a GPU it runs on the CPU in about a minute:

    python examples/torch_asha.py                       # CPU, or the GPU PyTorch sees
    python examples/torch_asha.py --workers 4 --gpus 0,1,2,3
"""

from __future__ import annotations

import io

import torch
from sklearn.datasets import load_digits
from torch import nn

import tunelab as tl

SPACE = {
    "lr": tl.loguniform(1e-3, 3e-1),
    "momentum": tl.uniform(0.8, 0.98),
    "weight_decay": tl.loguniform(1e-6, 1e-2),
    "channels": tl.choice([8, 16, 32]),
    "batch_size": tl.choice([32, 64, 128]),
}
#: At most this many epochs a trial (``--epochs`` changes it): ASHA's rungs are 1, 3, 9 and 27.
EPOCHS = 27


def load(device: torch.device) -> tuple[torch.Tensor, ...]:
    """The digits as 1x8x8 images, 70% to train and 30% to validate on, split the same way always."""
    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    cut = int(0.7 * len(y))
    train, valid = order[:cut], order[cut:]
    return x[train].to(device), y[train].to(device), x[valid].to(device), y[valid].to(device)


def network(channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.BatchNorm2d(2 * channels), nn.ReLU(),
        nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * channels, 10))


def train(config, trial):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # a worker's own GPU, with --gpus
    if device.type == "cpu":
        torch.set_num_threads(1)  # a network this small trains fastest on one thread per worker
    else:  # cuDNN's fastest convolutions may add in any order: hold it to the repeatable ones
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    trial.set_user_attr("device", str(device))
    x_train, y_train, x_valid, y_valid = load(device)
    torch.manual_seed(trial.seed)
    model = network(config["channels"]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                                weight_decay=config["weight_decay"])
    done = 0
    saved = trial.load_checkpoint()  # bytes saved at the rung it paused at, or None for a new run
    if saved is not None:
        state = torch.load(io.BytesIO(saved), map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        done = state["epoch"]
    error = None
    for epoch in range(done + 1, int(trial.budget) + 1):
        model.train()
        shuffle = torch.Generator().manual_seed(trial.seed + epoch)  # the same order paused or not
        for batch in torch.randperm(len(y_train), generator=shuffle).split(config["batch_size"]):
            batch = batch.to(device)
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            error = float((model(x_valid).argmax(dim=1) != y_valid).float().mean())
        buffer = io.BytesIO()
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, buffer)
        trial.save_checkpoint(buffer.getvalue())  # before report: a pause unwinds from it
        trial.report(epoch, error=error)
    return error


def main(n_trials: int = 40, workers: int = 2, storage: str = "sqlite:///examples.db",
         gpus: str | None = None, epochs: int = EPOCHS) -> tl.Study:
    fidelity = tl.fidelity("epochs", min=1, max=epochs, resumable=True)
    study = tl.tune(train, SPACE, metric="error", mode="min", fidelity=fidelity, scheduler="asha",
                    searcher="kde", n_trials=n_trials, workers=workers, seed=0, storage=storage,
                    name="asha-torch-digits", executor="processes" if gpus is not None else None,
                    executor_options={"gpus": gpus} if gpus is not None else None)
    print(study.counts())
    best = study.best
    print(f"best error {best.value:.4f} after {best.reports[-1].step:g} epochs on {best.user_attrs['device']}: "
          f"{best.config}")
    done = sum(t.reports[-1].step for t in study.trials if t.reports)
    print(f"{done:g} epochs in all (random search at full budget: {len(study.trials) * epochs:g})")
    return study


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="ASHA with promotion by epochs: a PyTorch CNN on the digits.")
    parser.add_argument("--trials", type=int, default=40, help="configurations to try (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default %(default)s)")
    parser.add_argument("--gpus", default=None, help="GPUs the workers share out, e.g. 0,1 (default: as PyTorch sees)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of a full run (default %(default)s)")
    parser.add_argument("--storage", default="sqlite:///examples.db", help="where the study is kept")
    args = parser.parse_args()
    main(args.trials, args.workers, args.storage, args.gpus, args.epochs)
