# N of one NumPy operation in one warm Python process, like bench/warm_trial.mjs:
# `python3 bench/warm_peer.py OP FILE OUT N`.
import json, os, resource, sys, time
import numpy as np

op, path, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = np.load(path) if op.startswith('write') else None

def rss_kb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1024

def save_fsync():
    with open(out, 'wb') as f:
        np.save(f, data)
        f.flush()
        os.fsync(f.fileno())

ops = {
    'open-mmap': lambda: np.load(path, mmap_mode='r'),
    'read': lambda: np.load(path),
    'read-sync': lambda: np.load(path),
    'write-nofsync': lambda: np.save(out, data),
    'write': save_fsync,
}
baseline = rss_kb()
times = []
for _ in range(n):
    start = time.perf_counter()
    a = ops[op]()
    times.append((time.perf_counter() - start) * 1e3)
    del a
s = sorted(times)
print(json.dumps(dict(medianMs=s[n // 2], p90Ms=s[int(n * 0.9)], firstMs=times[0], baselineKb=baseline, maxRssKb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
