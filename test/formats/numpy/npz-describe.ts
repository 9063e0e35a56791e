/** What NumPy sees in an .npz, shared by test/formats/numpy/npz.test.ts and the fixtures suite. */

/**
 * What NumPy sees in each member: dtype, shape, fortran flag and the data bytes in
 * little-endian storage order (what tensorio keeps), or the dtype when tensorio cannot hold it.
 */
export const DESCRIBE = `import numpy as np, json, sys, hashlib
out = {}
for f in sys.argv[1:]:
    d = np.load(f, allow_pickle=False)
    members = {}
    for k in d.files:
        try:
            a = d[k]
        except ValueError:
            members[k] = {'object': True}; continue
        le = a.astype(a.dtype.newbyteorder('<')) if a.dtype.byteorder == '>' else a
        fortran = bool(a.flags.f_contiguous and not a.flags.c_contiguous)
        members[k] = {'descr': a.dtype.str, 'shape': list(a.shape), 'fortran': fortran,
                      'sha': hashlib.sha256(le.tobytes(order='F' if fortran else 'C')).hexdigest()}
    out[f] = members
print(json.dumps(out))`;
