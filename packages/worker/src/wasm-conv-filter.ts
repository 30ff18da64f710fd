/**
 * The filter gradient of a 2-D convolution (`Conv2DBackpropFilter`) for TF.js's wasm backend,
 * which ships Conv2D and Conv2DBackpropInput but not this kernel — without it no convolutional
 * model can train on wasm, the fastest backend of a machine without a GPU (issue 18, item 3).
 *
 * Guarantee: for NHWC input x [n, h, w, c] and output gradient dy [n, oh, ow, f], returns
 * dW[kh, kw, c, f] = Σ_{b, i, j} x[b, i·sh + kh − top, j·sw + kw − left, c] · dy[b, i, j, f]
 * (zero outside x), with the padding and output size TF.js's own conv2d computes for the same
 * strides and pad (`backend_util.computeConv2DInfo`) — the cpu backend's result, up to float
 * summation order (tested against it). Dilation is 1, as TF.js's conv2d gradient requires. NCHW
 * input is refused with a clear error instead of a wrong answer.
 *
 * Cost: n·oh·ow·kh·kw·c·f multiply-adds in plain JavaScript on the wasm heap's data: for the
 * gallery's CNN (examples/jobs/mnist-cnn.json, batch 64) about 15 M per step.
 *
 * Paper: none (the definition of the convolution's gradient).
 */
import * as tf from '@tensorflow/tfjs-core';

/** What this kernel uses of the wasm backend (BackendWasm's public methods). */
interface WasmBackendLike {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeOutput(
    shape: number[],
    dtype: tf.DataType,
    memoryOffset?: number,
    values?: tf.backend_util.BackendValues,
  ): tf.TensorInfo;
}

interface Conv2DBackpropFilterAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/** The filter gradient on plain arrays (exported for its test against the cpu backend). */
export function conv2dFilterGradient(
  x: Float32Array,
  xShape: readonly [number, number, number, number],
  dy: Float32Array,
  attrs: Conv2DBackpropFilterAttrs,
): Float32Array {
  if (attrs.dataFormat === 'NCHW') {
    throw new Error('Conv2DBackpropFilter on wasm: only NHWC (channels last) input is supported');
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const dW = new Float32Array(filterHeight * filterWidth * inChannels * outChannels);
  const fStride = outChannels;
  const cStride = inChannels * outChannels;
  for (let b = 0; b < batchSize; b++) {
    for (let i = 0; i < outHeight; i++) {
      for (let j = 0; j < outWidth; j++) {
        const dyAt = ((b * outHeight + i) * outWidth + j) * outChannels;
        for (let kh = 0; kh < filterHeight; kh++) {
          const row = i * strideHeight + kh - top;
          if (row < 0 || row >= inHeight) continue;
          for (let kw = 0; kw < filterWidth; kw++) {
            const col = j * strideWidth + kw - left;
            if (col < 0 || col >= inWidth) continue;
            const xAt = ((b * inHeight + row) * inWidth + col) * inChannels;
            const wAt = (kh * filterWidth + kw) * cStride;
            for (let c = 0; c < inChannels; c++) {
              const xv = x[xAt + c]!;
              if (xv === 0) continue; // after a relu, often
              const at = wAt + c * fStride;
              for (let f = 0; f < outChannels; f++) dW[at + f]! += xv * dy[dyAt + f]!;
            }
          }
        }
      }
    }
  }
  return dW;
}

let registered = false;

/** Registers the kernel for the wasm backend (once; a no-op when wasm already has one). */
export function registerWasmConvFilterGradient(): void {
  if (registered || tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined) return;
  registered = true;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = backend as unknown as WasmBackendLike;
      const x = inputs.x!;
      const dy = inputs.dy!;
      const options = attrs as unknown as Conv2DBackpropFilterAttrs;
      const dW = conv2dFilterGradient(
        wasm.readSync(x.dataId) as Float32Array,
        x.shape as [number, number, number, number],
        wasm.readSync(dy.dataId) as Float32Array,
        options,
      );
      return wasm.makeOutput([...options.filterShape], 'float32', undefined, dW);
    },
  });
}
