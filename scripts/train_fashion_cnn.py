"""Train the shipped ``fashion-cnn`` weights from Debian's dataset-fashion-mnist.

    python scripts/train_fashion_cnn.py            # writes cnn_widgets/models/fashion_cnn.pt

Reproducible: a fixed seed, deterministic CPU kernels, one thread by default.
About 20-25 minutes on one CPU core. The
dataset comes from ``apt-get install dataset-fashion-mnist`` (IDX files under
/usr/share/datasets/fashion-mnist/); nothing is downloaded.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnn_widgets.models.fashion_cnn import MEAN, STD, WEIGHTS_FILE, FashionCNN
from cnn_widgets.models.datasets import load_fashion_mnist


def evaluate(net: FashionCNN, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch):
            logits = net(images[start : start + batch])
            correct += (logits.argmax(1) == labels[start : start + batch]).sum().item()
    return correct / len(images)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts of up to 2 pixels (clothes stay clothes)."""
    flip = torch.rand(len(batch), generator=generator) < 0.5
    batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
    padded = F.pad(batch, (2, 2, 2, 2), value=float(-MEAN[0] / STD[0]))
    dx, dy = torch.randint(0, 5, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + 28, dx : dx + 28]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1 keeps results identical across machines)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    generator = torch.Generator().manual_seed(args.seed)

    def normalized(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = load_fashion_mnist(split)
        return (images.float().div(255).unsqueeze(1) - MEAN[0]) / STD[0], labels.long()

    train_x, train_y = normalized("train")
    test_x, test_y = normalized("test")
    net = FashionCNN()
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * (len(train_x) // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    for epoch in range(args.epochs):
        net.train()
        started = time.time()
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order) - args.batch_size + 1, args.batch_size):
            index = order[start : start + args.batch_size]
            loss = F.cross_entropy(net(augment(train_x[index], generator)), train_y[index], label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        accuracy = evaluate(net, test_x, test_y)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.3f}, test accuracy {accuracy:.4f}, {time.time() - started:.0f} s", flush=True)
    state = {name: tensor.detach().clone() for name, tensor in net.state_dict().items()}
    torch.save(state, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
