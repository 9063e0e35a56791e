"""NumPy side of bench/npz.mjs: one operation per process, timed inside, with peak RSS."""
import json
import os
import resource
import sys
import time

import numpy as np


def inputs(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith('.npy'))
    return {n[:-4]: np.load(os.path.join(folder, n)) for n in names}


def main():
    op, *args = sys.argv[1:]
    if op == 'make':
        folder, total_mib, count = args[0], int(args[1]), int(args[2])
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng(0)
        per = total_mib * 2**20 // count // 4
        for i in range(count):
            # Weights-like data: normal floats rounded to 1/1024 so deflate has something to find.
            a = (np.round(rng.standard_normal(per) * 1024) / 1024).astype('<f4')
            np.save(os.path.join(folder, f'w{i}.npy'), a)
        print(json.dumps({'ok': True}))
        return
    start = time.perf_counter()
    if op in ('savez', 'savez_compressed'):
        arrays = inputs(args[0])
        start = time.perf_counter()
        (np.savez if op == 'savez' else np.savez_compressed)(args[1], **arrays)
    elif op == 'load':
        # Keep every array, as readNpz does (dropping each would let malloc reuse its pages).
        with np.load(args[0]) as archive:
            arrays = {k: archive[k] for k in archive.files}
    else:
        raise SystemExit(f'unknown op {op}')
    seconds = time.perf_counter() - start
    print(json.dumps({'seconds': seconds, 'maxRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


main()
