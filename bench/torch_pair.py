#!/usr/bin/env python3
"""The PyTorch peer's --steps-only measurement with a start barrier, for bench/run.ts.

Imports the peer script (torch_vae.py) as a module and calls its own load_mnist, model classes and
steps_only, so the timed steps are exactly the peer's. For the variants (--model iwae|iwae2|vamp|vqvae|pixelcnn|cvae|m2|lvae) it
imports torch_variants.py instead and builds the twin from the same arguments its command line
takes (--variant-args, e.g. "--model iwae1 --objective iwae --k 50"), with its own build() and
steps_only(). Between the warm-up and the timed steps it
writes PREFIX.ready.ID and waits until PREFIX.go exists, so that two processes started side by
side time the same stretch of wall-clock time. Prints one line `BENCH-RESULT {json}`.

    /usr/bin/python3 bench/torch_pair.py --peer-script PATH --data DIR --model mlp|conv \
        --steps N --barrier PREFIX --id ID
    /usr/bin/python3 bench/torch_pair.py --variants-script PATH --variant-args "--model vamp --prior vamp --K 500" \
        --data DIR --model vamp --steps N --barrier PREFIX --id ID
"""
import argparse
import importlib.util
import json
import os
import sys
import time


# The models of bench/run.ts whose twin is in torch_variants.py.
VARIANTS = ["iwae", "iwae2", "vamp", "vqvae", "pixelcnn", "cvae", "m2", "lvae"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-script")
    p.add_argument("--variants-script")
    p.add_argument("--variant-args", default="", help="the twin's own command-line arguments (torch_variants.py)")
    p.add_argument("--data", required=True)
    p.add_argument("--model", choices=["mlp", "conv", *VARIANTS], default="mlp")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--barrier", required=True)
    p.add_argument("--id", required=True)
    args = p.parse_args()

    variant = args.model in VARIANTS
    script = args.variants_script if variant else args.peer_script
    if not script:
        sys.exit(f"--model {args.model}: needs {'--variants-script' if variant else '--peer-script'}")
    spec = importlib.util.spec_from_file_location("torch_variants" if variant else "torch_vae", script)
    tv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tv)
    torch = tv.torch

    torch.set_num_threads(1)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    train, _ = tv.load_mnist(args.data)
    if variant:
        # The twin's own parser and defaults (batch size, lr, Adam epsilon per model) and its
        # labels (CVAE, M2), as its CLI's --steps-only gives them.
        targs = tv.finish_args(tv.build_parser().parse_args(["--data", args.data, *args.variant_args.split()]))
        train_y, _ = tv.load_mnist_labels(args.data)
        b = tv.build(targs, train, train_y)
        model, opt, train, bs = b.model, b.opt, b.data, b.bs
    else:
        model = tv.MLPVAE() if args.model == "mlp" else tv.ConvVAE()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        bs = 128

    tv.steps_only(model, opt, train, bs, 1, gen, warmup=args.warmup)  # warm-up, untimed

    with open(f"{args.barrier}.ready.{args.id}", "w") as f:
        f.write(str(os.getpid()))
    deadline = time.time() + 600
    while not os.path.exists(f"{args.barrier}.go"):
        if time.time() > deadline:
            sys.exit(f"--barrier: {args.barrier}.go did not appear within 10 minutes")
        time.sleep(0.005)

    cpu0, wall0 = time.process_time(), time.time()
    # warmup=1: one more untimed step inside steps_only, which times only the N steps after it.
    dt, _ = tv.steps_only(model, opt, train, bs, args.steps, gen, warmup=1)
    end = time.time()
    cpu, wall = time.process_time() - cpu0, end - wall0
    print("BENCH-RESULT " + json.dumps({
        "msPerStep": 1000 * dt / args.steps,
        "samplesPerSec": args.steps * bs / dt,
        "steps": args.steps,
        "windowStartUnixMs": 1000 * (end - dt),
        "windowEndUnixMs": 1000 * end,
        # CPU time / wall time over the whole steps_only call (its one untimed step included)
        "cpuShare": cpu / max(wall, 1e-9),
    }), flush=True)


if __name__ == "__main__":
    main()
