#!/usr/bin/env python3
"""Weight interchange with torchvision, both directions.

usage: torchvision_models.py WORKDIR NAME [NAME ...]
For each NAME, reads WORKDIR/NAME_ours.safetensors (augloader's weights) and WORKDIR/NAME_io.safetensors
(input "x" and augloader's eval-mode logits "logits"), loads the weights into torchvision's model of
that name with load_state_dict(strict=True), and checks its logits on x (max abs diff <= 1e-4).
Then writes WORKDIR/NAME_tv.safetensors (a randomly initialised torchvision model, BN running
statistics randomised too) and WORKDIR/NAME_tv_logits.safetensors (its eval-mode logits on x) for
augloader to load and check."""
import json, sys

import torch
import torchvision
from safetensors.torch import load_file, save_file

TOL = 1e-4


def main():
    work, names = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(2)
    ok = True
    for name in names:
        io = load_file(f"{work}/{name}_io.safetensors")
        x, ours = io["x"], io["logits"]
        classes = ours.shape[1]
        model = getattr(torchvision.models, name)(num_classes=classes).eval()
        state = load_file(f"{work}/{name}_ours.safetensors")
        model.load_state_dict(state, strict=True)
        with torch.no_grad():
            diff = (model(x) - ours).abs().max().item()
        print(json.dumps({"model": name, "direction": "augloader->torchvision", "max_abs_diff": diff,
                          "logit_scale": ours.abs().max().item()}))
        ok &= diff <= TOL
        torch.manual_seed(1)
        tv = getattr(torchvision.models, name)(num_classes=classes)
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
        tv.eval()
        save_file({k: v.contiguous() for k, v in tv.state_dict().items()}, f"{work}/{name}_tv.safetensors")
        with torch.no_grad():
            save_file({"logits": tv(x).contiguous()}, f"{work}/{name}_tv_logits.safetensors")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
