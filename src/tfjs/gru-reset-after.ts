/**
 * Keras's GRU with `reset_after=True` as a registered TensorFlow.js layer (`GRUResetAfter`).
 *
 * `reset_after=True` has been Keras's default since TensorFlow 2.0 (it is the cuDNN-compatible
 * variant), and tfjs's GRUCell refuses it ("GRUCell does not support reset_after parameter set
 * to true"), so no GRU trained with TF2 loads in tfjs as published. The variant differs in two
 * places (keras/src/layers/rnn/gru.py, GRUCell.call):
 * - the bias has shape (2, 3·units): row 0 is added to x·kernel, row 1 to h·recurrent_kernel;
 * - the reset gate multiplies h·U_h (plus its bias) after the product, not h before it:
 *   hh = act(x_h + r ⊙ (h·U_h + b_rh)) instead of act(x_h + (r ⊙ h)·U_h).
 * Gates are z, r, h in that order in both kernels, and h' = z ⊙ h + (1 − z) ⊙ hh, as tfjs.
 *
 * The cell reuses tfjs's GRUCell for argument parsing (activations, initializers,
 * regularizers, constraints) and serialization; the layer is tfjs's RNN around it (masks,
 * return_sequences/return_state, go_backwards, stateful, initial states). ioHandler turns a
 * Keras GRU with reset_after into this class on load and back into a Keras GRU on save.
 */
import * as tf from '@tensorflow/tfjs';

// tfjs exports the RNN class but not GRUCell's; its constructor comes from an instance.
type CellArgs = Parameters<typeof tf.layers.gruCell>[0];
const TfjsGRUCell = tf.layers.gruCell({ units: 1 }).constructor as new (args: CellArgs) => tf.layers.Layer;

type AddWeight = Parameters<tf.layers.Layer['addWeight']>;
type Initializer = NonNullable<AddWeight[3]>;
type Regularizer = AddWeight[4];
type Constraint = AddWeight[6];

/** The fields of tfjs's GRUCell this cell reads (they are not in tfjs's public types). */
interface ParsedCell {
  units: number;
  activation: { apply(x: tf.Tensor): tf.Tensor };
  recurrentActivation: { apply(x: tf.Tensor): tf.Tensor };
  useBias: boolean;
  kernelInitializer: Initializer;
  recurrentInitializer: Initializer;
  biasInitializer: Initializer;
  kernelRegularizer: Regularizer;
  recurrentRegularizer: Regularizer;
  biasRegularizer: Regularizer;
  kernelConstraint: Constraint;
  recurrentConstraint: Constraint;
  biasConstraint: Constraint;
  dropout: number;
  recurrentDropout: number;
  stateSize: number;
  dropoutMask: tf.Tensor | null;
  recurrentDropoutMask: tf.Tensor | null;
  kernel: tf.LayerVariable;
  recurrentKernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
}

/** One step of Keras's reset_after GRU. */
export class GRUResetAfterCell extends TfjsGRUCell {
  static className = 'GRUResetAfterCell';

  constructor(args: CellArgs) {
    super({ ...args, resetAfter: false });
  }

  private get p(): ParsedCell {
    return this as unknown as ParsedCell;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const inputDim = shape[shape.length - 1] as number;
    const p = this.p;
    const units = p.units;
    p.kernel = this.addWeight('kernel', [inputDim, units * 3], undefined, p.kernelInitializer, p.kernelRegularizer, true, p.kernelConstraint);
    p.recurrentKernel = this.addWeight('recurrent_kernel', [units, units * 3], undefined, p.recurrentInitializer, p.recurrentRegularizer, true, p.recurrentConstraint);
    // Keras's shape: row 0 the input bias, row 1 the recurrent bias.
    p.bias = p.useBias ? this.addWeight('bias', [2, units * 3], undefined, p.biasInitializer, p.biasRegularizer, true, p.biasConstraint) : null;
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor[] {
    return tf.tidy(() => {
      const list = inputs as tf.Tensor[];
      if (!Array.isArray(list) || list.length !== 2) throw new Error(`GRUResetAfterCell expects [inputs, h], got ${Array.isArray(list) ? list.length : 1} tensors`);
      const p = this.p;
      const training = kwargs.training === true;
      let x = list[0] as tf.Tensor;
      let h = list[1] as tf.Tensor;
      const hPrevious = h;
      // Dropout masks are drawn once per sequence (the layer clears them), as Keras does.
      if (training && p.dropout > 0 && p.dropout < 1) {
        if (p.dropoutMask === null) p.dropoutMask = tf.keep(tf.dropout(tf.onesLike(x), p.dropout));
        x = tf.mul(x, p.dropoutMask);
      }
      if (training && p.recurrentDropout > 0 && p.recurrentDropout < 1) {
        if (p.recurrentDropoutMask === null) p.recurrentDropoutMask = tf.keep(tf.dropout(tf.onesLike(h), p.recurrentDropout));
        h = tf.mul(h, p.recurrentDropoutMask);
      }
      let matrixX = tf.matMul(x as tf.Tensor2D, p.kernel.read() as tf.Tensor2D) as tf.Tensor;
      let matrixInner = tf.matMul(h as tf.Tensor2D, p.recurrentKernel.read() as tf.Tensor2D) as tf.Tensor;
      if (p.bias) {
        const [inputBias, recurrentBias] = tf.unstack(p.bias.read()) as [tf.Tensor, tf.Tensor];
        matrixX = tf.add(matrixX, inputBias);
        matrixInner = tf.add(matrixInner, recurrentBias);
      }
      const [xZ, xR, xH] = tf.split(matrixX, 3, -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
      const [recurrentZ, recurrentR, recurrentH] = tf.split(matrixInner, 3, -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
      const z = p.recurrentActivation.apply(tf.add(xZ, recurrentZ));
      const r = p.recurrentActivation.apply(tf.add(xR, recurrentR));
      const hh = p.activation.apply(tf.add(xH, tf.mul(r, recurrentH)));
      const next = tf.add(tf.mul(z, hPrevious), tf.mul(tf.sub(1, z), hh));
      return [next, next];
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), resetAfter: true };
  }
}
tf.serialization.registerClass(GRUResetAfterCell as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

type LayerArgs = Parameters<typeof tf.layers.gru>[0];

/**
 * Keras's `GRU(reset_after=True)` in TensorFlow.js: weights `kernel` (in, 3·units),
 * `recurrent_kernel` (units, 3·units) and `bias` (2, 3·units), exactly as Keras stores them.
 * Registered as `GRUResetAfter`; ioHandler maps Keras configs onto it.
 */
export class GRUResetAfter extends tf.RNN {
  static override className = 'GRUResetAfter';

  constructor(args: LayerArgs) {
    const cell = new GRUResetAfterCell(args as CellArgs);
    super({ ...args, cell } as unknown as ConstructorParameters<typeof tf.RNN>[0]);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    return tf.tidy(() => {
      const cell = this.cell as unknown as ParsedCell;
      // New masks for each sequence (tfjs's GRU does the same with its cell).
      if (cell.dropoutMask) tf.dispose(cell.dropoutMask);
      if (cell.recurrentDropoutMask) tf.dispose(cell.recurrentDropoutMask);
      cell.dropoutMask = null;
      cell.recurrentDropoutMask = null;
      const mask = kwargs?.mask ?? null;
      const training = kwargs?.training ?? null;
      const initialState = kwargs?.initialState ?? null;
      return super.call(inputs, { mask, training, initialState });
    });
  }

  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    return new cls(config);
  }
}
tf.serialization.registerClass(GRUResetAfter);
