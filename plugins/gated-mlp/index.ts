export { GatedMlpDecoder, GatedMlpEncoder, gatedMlpDecoder, gatedMlpEncoder, gatedMlpSchema, type GatedInit } from './gated-mlp';
import { gatedMlpDecoder, gatedMlpEncoder } from './gated-mlp';

export const plugins = [gatedMlpEncoder, gatedMlpDecoder];
