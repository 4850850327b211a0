export { MlpDecoder, mlpDecoder, mlpDecoderSchema } from './mlp.decoder';
export { MlpEncoder, mlpEncoder, mlpEncoderSchema } from './mlp.encoder';
import { mlpDecoder } from './mlp.decoder';
import { mlpEncoder } from './mlp.encoder';

export const plugins = [mlpEncoder, mlpDecoder];
