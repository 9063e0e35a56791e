# N of one operation in one warm Python process, like bench/warm_trial.mjs (same OP names):
# `python3 bench/warm_peer.py OP INPUT OUT N`. NumPy for .npy/.npz and the small files; the
# reference `safetensors` package (safetensors.numpy.load_file, safe_open with
# framework="numpy", save_file) for safetensors, and json + numpy.memmap for its mapped open,
# which the package does not offer for NumPy.
import json, os, resource, struct, sys, time
import numpy as np

op, path, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
fmt, what = op.split(':')
steps = {}

# Peak RSS is VmHWM, reset first (ru_maxrss survives execve: a child of a big parent reports its size).
try:
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
except OSError:
    pass


def peak_rss_kb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_kb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1024


def durable(write):
    def run():
        with open(out, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    return run


def timed(name, start):
    steps.setdefault(name, []).append((time.perf_counter() - start) * 1e3)


def durable_steps():
    # np.save + os.fsync, then what atomicity adds: a rename over the target and the folder's fsync.
    tmp = out + '.tmp'
    t = time.perf_counter()
    f = open(tmp, 'wb')
    timed('create temporary file', t)
    t = time.perf_counter()
    np.save(f, data)
    f.flush()
    timed('write the bytes', t)
    t = time.perf_counter()
    os.fsync(f.fileno())
    timed('fsync the file', t)
    t = time.perf_counter()
    f.close()
    timed('close', t)
    t = time.perf_counter()
    os.replace(tmp, out)  # also frees the replaced file
    timed('exchange or rename', t)
    t = time.perf_counter()
    d = os.open(os.path.dirname(os.path.abspath(out)), os.O_RDONLY)
    os.fsync(d)
    os.close(d)
    timed('fsync the folder', t)


def write_steps():
    # np.save without fsync, step by step, alternating in place (open with O_TRUNC: the old
    # file's pages and blocks are freed before the write reuses them) and atomically (a
    # temporary file, then os.replace frees the old one), the two ways a writer can replace a file.
    atomic = len(steps_log) % 2 == 1
    steps_log.append(atomic)
    name = (lambda step: step + ' [atomic]') if atomic else (lambda step: step)
    t = time.perf_counter()
    f = open(out + '.tmp' if atomic else out, 'wb')
    timed(name('create the file (NumPy: open with O_TRUNC, which frees the old file)'), t)
    t = time.perf_counter()
    np.save(f, data)
    f.flush()
    timed(name('write the bytes'), t)
    t = time.perf_counter()
    f.close()
    timed(name('close'), t)
    if atomic:
        t = time.perf_counter()
        os.replace(out + '.tmp', out)
        timed(name('exchange or rename'), t)


steps_log = []


def save_atomic():
    with open(out + '.tmp', 'wb') as f:
        np.save(f, data)
    os.replace(out + '.tmp', out)


def st_mapped():
    with open(path, 'rb') as f:
        size = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(size))
    header.pop('__metadata__', None)
    base = np.memmap(path, dtype=np.uint8, mode='r')
    return {k: base[8 + size + e['data_offsets'][0]: 8 + size + e['data_offsets'][1]].view('<f4') for k, e in header.items()}


def st_open_get():
    from safetensors import safe_open
    with safe_open(path, framework='numpy') as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def st_save_fsync():
    # save_file takes a path, not a file object: reopen what it wrote and fsync that.
    from safetensors.numpy import save_file
    save_file(data, out)
    fd = os.open(out, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


data = None
if what.startswith('write') or 'steps' in what:
    if fmt == 'npy':
        data = np.load(path)
    elif fmt == 'npz':
        data = dict(np.load(path))
    else:
        from safetensors.numpy import load_file
        data = load_file(path)
small = [os.path.join(path, name) for name in os.listdir(path)] if fmt == 'small' else []

ops = {
    'npy:open-mmap': lambda: np.load(path, mmap_mode='r'),
    'npy:read': lambda: np.load(path),
    'npy:read-sync': lambda: np.load(path),
    'npy:write': lambda: np.save(out, data),
    'npy:write-atomic': save_atomic,
    'npy:write-steps': write_steps,
    'npy:write-durable': durable(lambda f: np.save(f, data)),
    'npy:write-durable-buffered': durable(lambda f: np.save(f, data)),
    'npy:write-durable-direct': durable(lambda f: np.save(f, data)),
    'npy:durable-steps': durable_steps,
    'npy:durable-steps-direct': durable_steps,
    # NumPy ignores mmap_mode for .npz: its "open" reads the directory and each member on access.
    'npz:open-mmap': lambda: np.load(path),
    'npz:open-mmap-sync': lambda: np.load(path),
    'npz:read': lambda: dict(np.load(path)),
    'npz:write': lambda: np.savez(out, **data),
    'npz:write-durable': durable(lambda f: np.savez(f, **data)),
    'safetensors:open-mmap': st_mapped,
    'safetensors:open-mmap-sync': st_mapped,
    'safetensors:read': lambda: __import__('safetensors.numpy', fromlist=['load_file']).load_file(path),
    'safetensors:read-sync': lambda: __import__('safetensors.numpy', fromlist=['load_file']).load_file(path),
    'safetensors:read-mmap': st_mapped,
    'safetensors:open-get': st_open_get,
    'safetensors:write': lambda: __import__('safetensors.numpy', fromlist=['save_file']).save_file(data, out),
    'safetensors:write-durable': lambda: st_save_fsync(),
    'small:read': lambda: [np.load(p) for p in small],
    'small:read-serial': lambda: [np.load(p) for p in small],
    'small:read-sync': lambda: [np.load(p) for p in small],
}




baseline = rss_kb()
times = []
cpu_times = []  # process CPU time beside the wall time, as in warm_trial.mjs
for _ in range(n):
    cpu = time.process_time()
    start = time.perf_counter()
    a = ops[op]()
    times.append((time.perf_counter() - start) * 1e3)
    cpu_times.append((time.process_time() - cpu) * 1e3)
    del a
s = sorted(times)
result = dict(medianMs=s[n // 2], p90Ms=s[int(n * 0.9)], firstMs=times[0], cpuMedianMs=sorted(cpu_times)[n // 2],
              times=times, cpuTimes=cpu_times, baselineKb=baseline,
              maxRssKb=peak_rss_kb())
if steps:
    result['steps'] = {k: sorted(v)[len(v) // 2] for k, v in steps.items()}
print(json.dumps(result))
