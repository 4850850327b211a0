export { ConvDecoder, convDecoder, convDecoderSchema } from './conv.decoder';
export { ConvEncoder, convEncoder, convEncoderSchema } from './conv.encoder';
import { convDecoder } from './conv.decoder';
import { convEncoder } from './conv.encoder';

export const plugins = [convEncoder, convDecoder];
