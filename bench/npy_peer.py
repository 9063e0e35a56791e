# One timed NumPy operation in a fresh Python process: `python3 bench/npy_peer.py OP FILE [OUT]`.
# Prints {seconds, rssBeforeKb, maxRssKb} like bench/npy_trial.mjs.
import json, os, resource, sys, time
import numpy as np

op, path = sys.argv[1], sys.argv[2]
out = sys.argv[3] if len(sys.argv) > 3 else None

def rss_kb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1024

data = np.load(path) if op.startswith('save') else None
before = rss_kb()
start = time.perf_counter()
if op == 'load-mmap':
    a = np.load(path, mmap_mode='r')
elif op == 'load-mmap-touch':
    a = np.load(path, mmap_mode='r')
    int(np.asarray(a.view(np.uint8)[::4096]).sum())
elif op == 'load':
    a = np.load(path)
elif op == 'many-load':
    for name in sorted(os.listdir(path)):
        np.load(os.path.join(path, name))
elif op == 'many-load-mmap':
    for name in sorted(os.listdir(path)):
        np.load(os.path.join(path, name), mmap_mode='r')
elif op == 'save':
    np.save(out, data)
elif op == 'save-fsync':
    # np.save does not fsync; this is what durability would cost NumPy.
    with open(out, 'wb') as f:
        np.save(f, data)
        f.flush()
        os.fsync(f.fileno())
else:
    raise SystemExit(f'unknown op {op}')
seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, rssBeforeKb=before, maxRssKb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
