"""The reference reader for bench/safetensors.mjs: a safetensors file read with nothing but
json and numpy.memmap, the way a Python user without the safetensors package would.

usage: safetensors_peer.py open|load FILE  ->  prints {"ms": ..., "maxRssMiB": ..., "pageFaults": ..., "tensors": N}
  open: parse the header and create one lazy numpy.memmap per tensor (no data read)
  load: the same, then copy every tensor into memory (np.array), an eager load
"""
import json
import resource
import struct
import sys
import time

import numpy as np

NP = {'BOOL': '?', 'U8': 'u1', 'I8': 'i1', 'U16': '<u2', 'I16': '<i2', 'U32': '<u4', 'I32': '<i4',
      'U64': '<u8', 'I64': '<i8', 'F16': '<f2', 'BF16': '<u2', 'F32': '<f4', 'F64': '<f8',
      'C64': '<c8', 'F8_E4M3': 'u1', 'F8_E5M2': 'u1'}


def open_lazy(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop('__metadata__', None)
    base = np.memmap(path, dtype=np.uint8, mode='r')
    views = {}
    for name, e in header.items():
        begin, end = e['data_offsets']
        views[name] = base[8 + n + begin: 8 + n + end].view(NP[e['dtype']]).reshape(e['shape'])
    return views


def main():
    op, path = sys.argv[1], sys.argv[2]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    cpu = time.process_time()
    views = open_lazy(path)
    if op == 'load':
        views = {name: np.array(v) for name, v in views.items()}
    ms = (time.perf_counter() - start) * 1000
    cpu_ms = (time.process_time() - cpu) * 1000
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({'ms': ms, 'cpuMs': cpu_ms, 'maxRssMiB': usage.ru_maxrss / 1024, 'pageFaults': usage.ru_minflt - faults,
                      'tensors': len(views)}))


if __name__ == '__main__':
    main()
