"""Check 4's Python side, in one process (TensorFlow takes seconds to import here).

Builds two tf-keras models (Conv2D + BatchNormalization + Dense; Embedding + LSTM + Dense)
with random weights (BatchNormalization statistics included), saves each with
`model.save('<name>.h5')`, runs the tensorflowjs converter on it (plain and every
quantization it offers) through its own command-line entry point, and prints, as the last
stdout line, Keras's predictions and where everything is. The converter prints a banner
(ydf) to stdout: the caller reads only the last line.

usage: tfjs_converter_scenario.py OUT_DIR [--shard-bytes N]
"""
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import numpy as np
import tf_keras as keras
from tensorflowjs.converters import converter
import tensorflowjs

out = sys.argv[1]
shard = sys.argv[sys.argv.index('--shard-bytes') + 1] if '--shard-bytes' in sys.argv else None
rng = np.random.default_rng(20)


def randomise(model):
    weights = []
    for w in model.weights:
        v = rng.normal(0, 0.5, w.shape).astype(np.float32)
        if 'moving_variance' in w.name:
            v = np.abs(v) + 0.5
        weights.append(v)
    model.set_weights(weights)


def cnn():
    inp = keras.Input((8, 8, 3), name='image')
    x = keras.layers.Conv2D(4, 3, activation='relu', name='conv')(inp)
    x = keras.layers.BatchNormalization(name='bn')(x)
    x = keras.layers.Flatten(name='flat')(x)
    y = keras.layers.Dense(5, name='head')(x)
    return keras.Model(inp, y, name='cnn')


def seq():
    return keras.Sequential([
        keras.Input((6,), dtype='int32'),
        keras.layers.Embedding(50, 8, name='embed'),
        keras.layers.LSTM(16, name='lstm'),
        keras.layers.Dense(4, name='out'),
    ], name='seq')


VARIANTS = {
    'plain': [],
    'float16': ['--quantize_float16'],
    'uint8': ['--quantize_uint8'],
    'uint16': ['--quantize_uint16'],
}

result = {'tensorflowjs': tensorflowjs.__version__, 'keras': keras.__version__, 'models': {}}
for name, build, x in [
    ('cnn', cnn, rng.normal(0, 1, (3, 8, 8, 3)).astype(np.float32)),
    ('seq', seq, rng.integers(0, 50, (3, 6)).astype(np.int32)),
]:
    model = build()
    randomise(model)
    h5 = os.path.join(out, f'{name}.h5')
    model.save(h5)
    y = model.predict(x, verbose=0)
    variants = {}
    for variant, flags in VARIANTS.items():
        target = os.path.join(out, f'{name}-{variant}')
        # Flags last: '--quantize_*' take an optional pattern and would swallow a path after them.
        args = ['--input_format', 'keras', h5, target, *flags]
        if shard:
            args[2:2] = ['--weight_shard_size_bytes', shard]
        converter.convert(args)
        variants[variant] = os.path.join(target, 'model.json')
    result['models'][name] = {
        'h5': h5,
        'x': x.ravel().tolist(), 'xShape': list(x.shape), 'xDtype': str(x.dtype),
        'y': y.ravel().tolist(), 'yShape': list(y.shape),
        'variants': variants,
        'weights': {w.name: w.numpy().ravel().tolist() for w in model.weights},
    }
print(json.dumps(result))
