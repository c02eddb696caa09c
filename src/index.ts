/** The library's public entry point: what `import … from 'rlaif-v-convert'` gives. */
export { convert, convertIter } from './convert.js';
export type { ConvertEvent, ConvertReport, ConvertRunOptions, SplitReport } from './convert.js';
export type { ConvertOptions } from './convert-options.js';
export { makeSample } from './make-sample.js';
export type { SampleOptions, SampleReport } from './make-sample.js';
export { AccountingError, InputError, OptionError, OutputError, RlaifError } from './errors.js';
export type { ImageMode, ImagePolicy, RejectCode } from './types.js';
