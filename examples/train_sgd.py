"""A training script that knows nothing of tunelab: a linear classifier trained by SGD on the
digits data set bundled with scikit-learn, one pass over the data per epoch.

    python train_sgd.py --alpha 1e-4 --eta0 0.01 --epochs 10

It prints one line per epoch, ``epoch N val_acc X``; examples/study.yaml tells ``tunelab run``
how to read those lines. Needs only scikit-learn (no PyTorch).
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=1e-4, help="L2 regularisation strength")
    parser.add_argument("--eta0", type=float, default=0.01, help="initial learning rate")
    parser.add_argument("--schedule", default="invscaling", choices=["constant", "invscaling", "adaptive"])
    parser.add_argument("--loss", default="hinge", choices=["hinge", "log_loss", "modified_huber"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)

    rng = np.random.default_rng(args.seed)
    model = SGDClassifier(loss=args.loss, alpha=args.alpha, eta0=args.eta0, learning_rate=args.schedule,
                          random_state=args.seed)
    classes = np.unique(y)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            model.partial_fit(x_train[batch], y_train[batch], classes=classes)
        print(f"epoch {epoch} val_acc {model.score(x_val, y_val):.4f}", flush=True)


if __name__ == "__main__":
    main()
