"""Run by torchrun in test_torchrun.py: each rank iterates its shard (optionally resuming from
a state file, optionally stopping after some steps and saving rank 0's state) and writes the
indices it saw and a checksum of each sample's pixels to OUT/rank{R}.json."""

import hashlib
import json
import sys

import torch.distributed as dist

import augloader

data, out, stop_after, state_in = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
dist.init_process_group("gloo")
rank = dist.get_rank()
loader = augloader.Loader(data, batch_size=3, workers=2, seed=11, size=32, return_indices=True)
assert (loader.rank, loader.world_size) == (rank, dist.get_world_size())
if state_in != "-":
    loader.load_state_dict(json.load(open(state_in)))
else:
    loader.set_epoch(1)
seen = {}
steps = 0
for images, labels, indices in loader:
    for k, i in enumerate(indices.tolist()):
        seen[i] = hashlib.sha1(images[k].numpy().tobytes()).hexdigest()
    steps += 1
    if stop_after and steps == stop_after:
        break
if rank == 0 and stop_after:
    json.dump(loader.state_dict(), open(f"{out}/state.json", "w"))
json.dump({"steps": steps, "seen": seen}, open(f"{out}/rank{rank}.json", "w"))
dist.barrier()
dist.destroy_process_group()
