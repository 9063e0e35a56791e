"""NumPy side of bench/npz.mjs: one timed operation per process.

Prints {seconds, rssBeforeKb, maxRssKb} like bench/npy_peer.py.
    make FOLDER MIB COUNT          write COUNT float32 .npy inputs totalling MIB (not timed)
    savez | savez_compressed INPUTS OUT
    load ARCHIVE                   np.load and keep every member, as readNpz does
"""
import json
import os
import resource
import sys
import time

import numpy as np


def rss_kb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 1024


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
            # Weights-like data: normal float32, which deflate shrinks by about 7%.
            np.save(os.path.join(folder, f'w{i}.npy'), rng.standard_normal(per, dtype=np.float32))
        return
    arrays = inputs(args[0]) if op.startswith('savez') else None
    before = rss_kb()
    start = time.perf_counter()
    if op == 'savez':
        np.savez(args[1], **arrays)
    elif op == 'savez_compressed':
        np.savez_compressed(args[1], **arrays)
    elif op == 'load':
        # Keep every array (dropping each would let malloc reuse its pages for the next).
        with np.load(args[0]) as archive:
            kept = {k: archive[k] for k in archive.files}
        assert kept
    else:
        raise SystemExit(f'unknown op {op}')
    seconds = time.perf_counter() - start
    print(json.dumps({'seconds': seconds, 'rssBeforeKb': before, 'maxRssKb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


main()
