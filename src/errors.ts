/**
 * Every error code the tool gives, by kind (each is listed in the README, held there by test/errors.test.ts). A code
 * is stable: scripts may test it.
 */
export type ErrorCode =
  // The input (InputError, exit 2): nothing was written.
  | 'ERR_INPUT_MISSING'
  | 'ERR_INPUT_UNREADABLE'
  | 'ERR_INPUT_EMPTY'
  | 'ERR_NOT_PARQUET'
  | 'ERR_PARQUET_TRUNCATED'
  | 'ERR_PARQUET_FOOTER'
  | 'ERR_PARQUET_DATA'
  | 'ERR_MISSING_COLUMN'
  | 'ERR_COLUMN_TYPE'
  | 'ERR_ROW_GROUP_TOO_LARGE'
  | 'ERR_PUSH_NOT_DATASET'
  // The parts of a run over several machines, for finalize (InputError, exit 2).
  | 'ERR_NO_PARTS'
  | 'ERR_PARTS_INCOMPLETE'
  | 'ERR_PARTS_MISMATCH'
  // An option (OptionError, exit 2).
  | 'ERR_INVALID_OPTION'
  // The output, its staging directory and the cache (OutputError, exit 2).
  | 'ERR_OUTPUT_EXISTS'
  | 'ERR_OUTPUT_BUSY'
  | 'ERR_OUTPUT_HAS_PARTS'
  | 'ERR_OUTPUT_NOT_OURS'
  | 'ERR_OUTPUT_OVERLAPS_INPUT'
  | 'ERR_OUTPUT_IS_FILE'
  | 'ERR_OUTPUT_HOLDS_CWD'
  | 'ERR_OUTPUT_UNWRITABLE'
  | 'ERR_OUTPUT_CHANGED'
  | 'ERR_PARQUET_WRITE'
  | 'ERR_RESUME'
  | 'ERR_CACHE_NOT_OURS'
  | 'ERR_CACHE_OVERLAPS_OUTPUT'
  // The run (RlaifError, exit 1).
  | 'ERR_BAD_IMAGE'
  | 'ERR_WORKER_FAILED'
  | 'ERR_IMAGE_TIMEOUT'
  | 'ERR_LOCK_LOST'
  | 'ERR_SLURM'
  | 'ERR_ROW_ACCOUNTING'
  // The Hugging Face Hub (HubError).
  | 'ERR_HUB_NO_TOKEN'
  | 'ERR_HUB_BAD_TOKEN'
  | 'ERR_HUB_UNAUTHORIZED'
  | 'ERR_HUB_FORBIDDEN'
  | 'ERR_HUB_REPO_NOT_FOUND'
  | 'ERR_HUB_REVISION_NOT_FOUND'
  | 'ERR_HUB_FILE_NOT_FOUND'
  | 'ERR_HUB_NO_PARQUET'
  | 'ERR_HUB_DOWNLOAD'
  | 'ERR_HUB_UNREACHABLE'
  | 'ERR_HUB_OFFLINE'
  | 'ERR_HUB_OFFLINE_MISSING'
  | 'ERR_HUB_CACHE_BROKEN'
  | 'ERR_HUB_REQUEST';

/**
 * The tool's errors. Each has a stable `code` and a message that says what to do next.
 * `exitCode` is what the CLI exits with when the error reaches it.
 */
export class RlaifError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RlaifError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** The input cannot be converted: a missing or unreadable file, not parquet, wrong columns. Nothing was written. */
export class InputError extends RlaifError {
  readonly file: string | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; file?: string } = {}) {
    super(code, message, { cause: options.cause, exitCode: 2 });
    this.name = 'InputError';
    this.file = options.file;
  }
}

/** An option has a wrong type or value. */
export class OptionError extends RlaifError {
  constructor(message: string) {
    super('ERR_INVALID_OPTION', message, { exitCode: 2 });
    this.name = 'OptionError';
  }
}

/** The output directory exists and `overwrite` was not given, or output could not be written. */
export class OutputError extends RlaifError {
  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { cause: options.cause, exitCode: 2 });
    this.name = 'OutputError';
  }
}

/** Rows in did not equal rows out plus rows rejected: a bug, never an input problem. */
export class AccountingError extends RlaifError {
  constructor(message: string) {
    super('ERR_ROW_ACCOUNTING', message, { exitCode: 1 });
    this.name = 'AccountingError';
  }
}

/** Builds the message for an option of the wrong type or range, naming the option and what it got. */
export function invalidOption(name: string, expected: string, actual: unknown): OptionError {
  const shown = typeof actual === 'string' ? JSON.stringify(actual) : String(actual);
  return new OptionError(`Expected ${expected} for ${name} but received ${shown} of type ${typeof actual}`);
}

/**
 * The Hugging Face Hub refused or failed a request, or no token was found for a call that needs one. `status` is the
 * HTTP status where there was one; the message never holds the token.
 */
export class HubError extends RlaifError {
  readonly status: number | undefined;
  readonly url: string | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; status?: number; url?: string; exitCode?: number } = {}) {
    super(code, message, { cause: options.cause, exitCode: options.exitCode ?? 1 });
    this.name = 'HubError';
    this.status = options.status;
    this.url = options.url;
  }
}
