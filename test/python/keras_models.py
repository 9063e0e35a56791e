# Full Keras models for test/tfjs/keras-oracle-models.test.ts (issue 20, check 3).
#
#   python keras_models.py write DIR   saves every model with tf-keras (`model.save('x.h5')`) and
#                                      Keras 3 (`model.save('x.keras')`), and the models tfjs
#                                      cannot build; prints inputs and Keras's outputs as JSON
#   python keras_models.py check DIR   loads the .h5 files tensorio wrote (DIR/back/*.h5) with
#                                      tf-keras and Keras 3 `load_model`, prints their outputs
#
# One process for every model of both Kerases: TensorFlow's import costs seconds here.
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np
import tensorflow as tf
import tf_keras
import keras


def hexof(a):
    a = np.asarray(a)
    return {'dtype': a.dtype.str, 'shape': list(a.shape), 'hex': np.ascontiguousarray(a.astype(a.dtype.newbyteorder('<'))).tobytes().hex()}


def inputs_for(name):
    rng = np.random.default_rng(abs(hash(name)) % 1000)
    if name.startswith('conv'):
        return [rng.standard_normal((2, 8, 8, 3)).astype('float32')]
    if name.startswith('text') or name.startswith('gru'):
        ids = rng.integers(1, 20, size=(3, 7)).astype('float32')
        ids[0, 5:] = 0  # padding, masked by mask_zero in the text models
        ids[1, 3:] = 0
        return [ids]
    if name.startswith('functional'):
        return [rng.standard_normal((2, 10)).astype('float32'), rng.standard_normal((2, 6)).astype('float32')]
    return [rng.standard_normal((2, 10)).astype('float32')]


def models(k, legacy):
    L = k.layers
    out = {}
    out['conv'] = k.Sequential([
        L.InputLayer(input_shape=(8, 8, 3)) if legacy else k.Input((8, 8, 3)),
        L.Conv2D(4, 3, activation='relu'), L.MaxPooling2D(), L.BatchNormalization(),
        L.Conv2D(6, 3, padding='same'), L.AveragePooling2D(pool_size=2, strides=1), L.GlobalAveragePooling2D(),
        L.Dropout(0.3), L.Dense(5)])
    out['text'] = k.Sequential([
        L.InputLayer(input_shape=(7,)) if legacy else k.Input((7,)),
        L.Embedding(20, 8, mask_zero=True), L.LSTM(6, return_sequences=True), L.GRU(5, reset_after=True), L.Dense(3)])
    out['gru_before'] = k.Sequential([
        L.InputLayer(input_shape=(7,)) if legacy else k.Input((7,)),
        L.Embedding(20, 4), L.GRU(5, reset_after=False, return_sequences=True), L.LayerNormalization(), L.GRU(3, go_backwards=True), L.Dense(2)])
    a = k.Input((10,), name='a')
    b = k.Input((6,), name='b')
    x = L.Dense(8, activation='tanh')(a)
    y = L.Dense(8)(b)
    s = L.Add()([x, y])
    c = L.Concatenate()([s, a])
    c = L.LayerNormalization()(c)
    c = L.Dropout(0.2)(c)
    out['functional'] = k.Model([a, b], L.Dense(4)(c))
    if legacy:  # Keras 2's hard_sigmoid is tfjs's (0.2x + 0.5); Keras 3's is another function
        i = k.Input((10,))
        h = L.Dense(6, activation='hard_sigmoid')(i)
        out['hard_sigmoid'] = k.Model(i, L.Dense(3)(h))
    return out


def refused(k, legacy):
    """Models TensorFlow.js cannot build faithfully, by the name of what tensorio must refuse."""
    L = k.layers
    out = {}
    if legacy:
        out['groups'] = k.Sequential([L.InputLayer(input_shape=(6, 6, 4)), L.Conv2D(4, 3, groups=2), L.Flatten(), L.Dense(2)])
        out['time_major'] = k.Sequential([L.InputLayer(input_shape=(5, 3)), L.LSTM(4, time_major=True)])
        out['renorm'] = k.Sequential([L.InputLayer(input_shape=(4,)), L.BatchNormalization(renorm=True)])
        out['lambda'] = k.Sequential([L.InputLayer(input_shape=(4,)), L.Lambda(lambda t: t * 2), L.Dense(2)])
    else:
        out['rms_scaling'] = k.Sequential([k.Input((4,)), L.LayerNormalization(rms_scaling=True), L.Dense(2)])
        out['hard_sigmoid'] = k.Sequential([k.Input((4,)), L.Dense(3, activation='hard_sigmoid')])
        out['two'] = k.Sequential([k.Input((6, 6, 4)), L.Conv2D(4, 3, groups=2), L.Flatten(), L.LayerNormalization(rms_scaling=True)])
    return out


def randomise(model, seed):
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.weights:
        v = rng.standard_normal(tuple(w.shape)).astype('float32') * 0.5
        if 'moving_variance' in w.name or 'variance' == w.name.split('/')[-1].split(':')[0]:
            v = np.abs(v) + 0.5
        weights.append(v)
    model.set_weights(weights)


def write(folder):
    result = {'versions': {'tf_keras': tf_keras.__version__, 'keras': keras.__version__}, 'models': {}, 'refused': []}
    for tag, k, ext in [('tf_keras', tf_keras, 'h5'), ('keras3', keras, 'keras')]:
        for n, (name, model) in enumerate(models(k, tag == 'tf_keras').items()):
            randomise(model, n)
            xs = inputs_for(name)
            y = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
            file = '%s_%s.%s' % (tag, name, ext)
            model.save(os.path.join(folder, file))
            result['models'][file] = {'inputs': [hexof(x) for x in xs], 'y': hexof(y), 'weights': [hexof(w) for w in model.get_weights()]}
        for name, model in refused(k, tag == 'tf_keras').items():
            file = 'refused_%s_%s.%s' % (tag, name, ext)
            model.save(os.path.join(folder, file))
            result['refused'].append(file)
    return result


def check(folder):
    with open(os.path.join(folder, 'inputs.json')) as f:
        inputs = json.load(f)
    out = {}
    for file, xs in inputs.items():
        arrays = [np.frombuffer(bytes.fromhex(x['hex']), dtype='<f4').reshape(x['shape']) for x in xs]
        path = os.path.join(folder, 'back', file)
        for tag, k in [('tf_keras', tf_keras), ('keras3', keras)]:
            try:
                model = k.models.load_model(path, compile=False)
                y = model.predict(arrays if len(arrays) > 1 else arrays[0], verbose=0)
                out['%s by %s' % (file, tag)] = hexof(y)
            except Exception as error:  # reported by the test of that file, the others still run
                out['%s by %s' % (file, tag)] = {'error': '%s: %s' % (type(error).__name__, error)}
    return out


if __name__ == '__main__':
    result = write(sys.argv[2]) if sys.argv[1] == 'write' else check(sys.argv[2])
    print(json.dumps(result))
