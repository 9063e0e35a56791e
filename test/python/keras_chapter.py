# The chapter's MLP in real Keras, both ways (test/tfjs/keras-oracle.test.ts runs it).
#
#   python keras_chapter.py write DIR   writes the chapter's files with tf-keras (Keras 2) and
#                                       Keras 3, prints X, every weight and Y as JSON
#   python keras_chapter.py check DIR   loads the files tensorio wrote into fresh Keras models,
#                                       prints their weights and predictions as JSON
#
# Both Kerases run in one process (tf_keras is its own package next to keras 3), because
# importing TensorFlow costs seconds on the test machines. Arrays travel as little-endian hex,
# so "bit for bit" means bit for bit.
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


def unhex(h, shape):
    return np.frombuffer(bytes.fromhex(h), dtype='<f4').reshape(shape)


# The chapter, with tf.keras = tf_keras (what `tf.keras` is in the chapter's TensorFlow 2.x).
class MLP(tf_keras.Model):
    def __init__(self):
        super().__init__()
        self.flatten = tf_keras.layers.Flatten()
        self.hidden = tf_keras.layers.Dense(256, activation='relu')
        self.out = tf_keras.layers.Dense(10)

    def call(self, inputs):
        x = self.flatten(inputs)
        x = self.hidden(x)
        return self.out(x)


def keras3_mlp():
    # Keras 3's version of it: a Sequential (a subclassed Keras 3 model saves its weights under
    # its attribute names and cannot be rebuilt from a .keras file without its Python class).
    return keras.Sequential([keras.Input((20,)), keras.layers.Flatten(), keras.layers.Dense(256, activation='relu'), keras.layers.Dense(10)])


def write(folder):
    tf.random.set_seed(7)
    X = tf.random.normal((2, 20))
    net = MLP()
    Y = net(X)
    net.save_weights(os.path.join(folder, '4.5saved_model.h5'))
    model = keras3_mlp()
    model.set_weights([w + 0.25 for w in net.get_weights()])  # different weights, so no file can pass for the other
    Y3 = model(X.numpy())
    model.save_weights(os.path.join(folder, 'm.weights.h5'))
    model.save(os.path.join(folder, 'm.keras'))
    return {
        'X': hexof(X.numpy()),
        'tf_keras': {'version': tf_keras.__version__, 'weights': [hexof(w) for w in net.get_weights()], 'Y': hexof(Y.numpy())},
        'keras3': {'version': keras.__version__, 'weights': [hexof(w) for w in model.get_weights()], 'Y': hexof(np.asarray(Y3))},
    }


def check(folder):
    with open(os.path.join(folder, 'X.json')) as f:
        X = unhex(json.load(f)['hex'], (2, 20))
    out = {}
    # Reference outputs from the chapter's own files: the Y that Y2 must equal.
    net = MLP()
    net(X)
    net.load_weights(os.path.join(folder, '4.5saved_model.h5'))
    Y = net(X).numpy()
    for name in ['back.h5', 'fresh.h5']:
        net2 = MLP()
        net2(X)  # a subclassed model has no weights until it is called
        net2.load_weights(os.path.join(folder, name))
        Y2 = net2(X).numpy()
        out[name] = {'weights': [hexof(w) for w in net2.get_weights()], 'Y2': hexof(Y2), 'Y2 == Y': bool(np.all(Y2 == Y))}
    model = keras3_mlp()
    model.load_weights(os.path.join(folder, 'm.weights.h5'))
    Y3 = np.asarray(model(X))
    for name in ['back.weights.h5', 'fresh.weights.h5']:
        model2 = keras3_mlp()
        model2.load_weights(os.path.join(folder, name))
        Y2 = np.asarray(model2(X))
        out[name] = {'weights': [hexof(w) for w in model2.get_weights()], 'Y2': hexof(Y2), 'Y2 == Y': bool(np.all(Y2 == Y3))}
    return out


if __name__ == '__main__':
    result = write(sys.argv[2]) if sys.argv[1] == 'write' else check(sys.argv[2])
    print(json.dumps(result))
