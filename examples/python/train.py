"""Trains a torchvision ResNet with augloader as its data loader.

    python examples/python/train.py --data DATA --model resnet18 --epochs 2
    torchrun --nproc_per_node 2 examples/python/train.py --data DATA   # DDP: gloo on CPU, nccl on CUDA

Batches arrive normalised on the device (`device=`, `dtype=`, `normalize=True`: on CUDA copied
from pinned memory one batch ahead and converted there; with AMP and channels_last batches).
Validation sees every sample exactly once over the ranks (the val split's default) and sums the
counts with `augloader.all_reduce_sum`, so its top-1 is the dataset's whatever the rank count. Each epoch prints one JSON line as `augloader train` does
(images_per_sec, data_wait_fraction, val_top1). The checkpoint holds the model, the optimiser and
`loader.state_dict()`, so `--resume` continues mid-epoch exactly, also on another number of ranks.
"""

import argparse
import gc
import json
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision

import augloader


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder (train/ and val/ ImageFolders, ...)")
    p.add_argument("--model", default="resnet18", choices=["resnet18", "resnet50"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64, help="per rank")
    p.add_argument("--workers", type=int, default=2, help="augloader threads per rank")
    p.add_argument("--size", type=int, default=224, help="crop side")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--max-steps", type=int, default=0, help="stop each epoch after this many steps (0: all)")
    p.add_argument("--stop-after", type=int, default=0, help="end the run after this many steps in all (0: never), leaving a checkpoint")
    p.add_argument("--checkpoint", default="checkpoint.pt")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def setup_distributed():
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return rank, device


def evaluate(model, loader):
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for x, labels in loader:
            with torch.autocast(x.device.type, enabled=x.device.type == "cuda"):
                logits = model(x)
            correct += int((logits.argmax(1) == labels).sum())
            total += len(labels)
    # Ranks may hold one batch more or fewer: no collective inside the loop, one sum after it.
    correct, total = augloader.all_reduce_sum(correct, total)
    model.train()
    return correct / total


def main():
    args = parse_args()
    rank, device = setup_distributed()
    torch.manual_seed(args.seed)
    # On CUDA, channels_last batches go to the device in the memory format its convolutions prefer.
    common = dict(batch_size=args.batch_size, workers=args.workers, size=args.size, device=device,
                  dtype=torch.float32, normalize=True, channels_last=device.type == "cuda")
    train = augloader.Loader(args.data, seed=args.seed, drop_last=True, **common)
    val = augloader.Loader(args.data, split="val", **common)
    model = getattr(torchvision.models, args.model)(num_classes=len(train.classes)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda")
    if args.resume:
        ckpt = torch.load(args.checkpoint, map_location=device)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        train.load_state_dict(ckpt["loader"])
    ddp = torch.nn.parallel.DistributedDataParallel(model) if dist.is_initialized() else model
    steps_total = 0
    for epoch in range(train.epoch, args.epochs):
        train.set_epoch(epoch)
        seen, wait, start = 0, 0.0, time.perf_counter()
        t = time.perf_counter()
        for step, (x, y) in enumerate(train):
            wait += time.perf_counter() - t
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                loss = F.cross_entropy(ddp(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            seen += len(y)
            steps_total += 1
            if args.stop_after and steps_total >= args.stop_after:
                break
            if args.max_steps and step + 1 >= args.max_steps:
                break
            t = time.perf_counter()
        secs = time.perf_counter() - start
        world = dist.get_world_size() if dist.is_initialized() else 1
        stopped = bool(args.stop_after and steps_total >= args.stop_after)
        if rank == 0:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "loader": train.state_dict()}
            torch.save(state, args.checkpoint)
        if stopped:
            break
        top1 = evaluate(model, val)
        if rank == 0:
            print(json.dumps({
                "epoch": epoch, "loss": loss.item(), "images_per_sec": seen * world / secs,
                "data_wait_fraction": wait / secs, "val_top1": top1,
            }), flush=True)
    if dist.is_initialized():
        # Free the DDP reducer first: as the process group's last holder it would join gloo's
        # threads with the GIL held while one of them may need the GIL to free a tensor (a
        # deadlock, seen at exit); destroy_process_group joins them with the GIL released.
        del ddp
        gc.collect()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
