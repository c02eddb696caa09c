/** The library's public entry point: what `import … from 'rlaif-v-convert'` gives. */
export { convert, convertIter } from './convert.js';
export type { ConvertRunOptions } from './convert.js';
export type { ConvertEvent, ConvertReport, SplitReport } from './convert-report.js';
export type { ConvertOptions } from './convert-options.js';
export { makeSample } from './make-sample.js';
export type { SampleOptions, SampleReport } from './make-sample.js';
export { AccountingError, HubError, InputError, OptionError, OutputError, RlaifError } from './errors.js';
export type { ImageMode, ImagePolicy, RejectCode } from './types.js';
export { push, pushIter, checkPushAccess } from './push-dataset.js';
export type { PushEvent, PushOptions, PushReport } from './push-dataset.js';
export { hubSettings } from './hub-settings.js';
export type { HubSettings, HubSettingsOptions } from './hub-settings.js';
export { resolveDataset, downloadToCache } from './download-dataset.js';
export type { DatasetSource, DownloadProgress, RemoteFile } from './download-dataset.js';
export { httpFetch } from './http-fetch.js';
export { finalize, finalizeIter } from './finalize.js';
export type { FinalizeOptions } from './finalize.js';
