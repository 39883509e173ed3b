#!/usr/bin/env python3
"""An independent check of `augloader experiment degradation`: the CIFAR-form plain/ResNet-N of
He et al. (2015; option A shortcuts, BN after every conv, Kaiming normal fan-in weights, a final
layer of std 0.01) written in PyTorch alone, trained on an ImageFolder with the trainer's
schedule (SGD momentum 0.9, weight decay 5e-4 on weights only, linear warm-up then cosine,
batch 64, random resized crops and flips). Prints one JSON line per epoch.

usage: degradation_reference.py DATA MODEL [--size 32] [--lr 0.05] [--epochs 6] [--warmup 1]
  MODEL: plainN or resnetN (N = 6n + 2)"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from torchvision.datasets import ImageFolder


class Block(nn.Module):
    def __init__(self, cin, cout, stride, plain):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.stride, self.extra, self.plain = stride, cout - cin, plain

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        if not self.plain:
            s = x[:, :, :: self.stride, :: self.stride]
            y = y + F.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(y)


class Net(nn.Module):
    def __init__(self, depth, plain, classes):
        super().__init__()
        n, cin = (depth - 2) // 6, 16
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks = []
        for stage in range(3):
            cout = 16 << stage
            for j in range(n):
                blocks.append(Block(cin, cout, 2 if stage > 0 and j == 0 else 1, plain))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("model")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=64)
    a = p.parse_args()
    plain = a.model.startswith("plain")
    depth = int(a.model.removeprefix("plain").removeprefix("resnet"))
    torch.manual_seed(0)
    norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    aug = T.Compose([T.RandomResizedCrop(a.size, scale=(0.35, 1)), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    train = ImageFolder(a.data + "/train", aug)
    loader = torch.utils.data.DataLoader(train, batch_size=a.batch, shuffle=True, drop_last=True, num_workers=1)
    net = Net(depth, plain, len(train.classes))
    decay = [q for q in net.parameters() if q.dim() > 1]
    rest = [q for q in net.parameters() if q.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}], lr=a.lr, momentum=0.9)
    total, warm, step, start = a.epochs * len(loader), int(a.warmup * len(loader)), 0, time.time()
    for epoch in range(a.epochs):
        net.train()
        loss_sum = right = seen = 0
        for x, y in loader:
            f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
            for g in opt.param_groups:
                g["lr"] = a.lr * f
            out = net(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(y)
            right += (out.argmax(1) == y).sum().item()
            seen += len(y)
        print(json.dumps({"model": a.model, "epoch": epoch, "train_loss": round(loss_sum / seen, 4),
                          "train_error": round(1 - right / seen, 4), "seconds": round(time.time() - start)}), flush=True)


if __name__ == "__main__":
    main()
