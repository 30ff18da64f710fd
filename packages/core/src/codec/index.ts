/**
 * Update codecs: one `Codec` interface (codec.ts), one file per implementation, registered here
 * by name in wire-id order. Importing this module registers fp32, fp16, one-bit and
 * stochastic-one-bit.
 */
import { registerCodec } from './codec.ts';
import { fp16Codec } from './fp16.ts';
import { fp32Codec } from './fp32.ts';
import { oneBitCodec } from './one-bit.ts';
import { stochasticOneBitCodec } from './stochastic-one-bit.ts';

export {
  bitsPerParameter,
  decodeFrameInto,
  decodeParsedFrameInto,
  encodeToFrame,
  findCodec,
  getCodec,
  registerCodec,
  registeredCodecs,
  type Codec,
  type CodecEncoder,
  type CodecEncoderOptions,
  type DecodeExpectations,
} from './codec.ts';
export { fp16Codec, fromFloat16Bits, toFloat16Bits } from './fp16.ts';
export { fp32Codec } from './fp32.ts';
export { ONE_BIT_DEFAULT_BLOCK_SIZE, oneBitCodec } from './one-bit.ts';
export { stochasticOneBitCodec } from './stochastic-one-bit.ts';

registerCodec(fp32Codec);
registerCodec(fp16Codec);
registerCodec(oneBitCodec);
registerCodec(stochasticOneBitCodec);
