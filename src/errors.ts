/**
 * The tool's errors. Each has a stable `code` and a message that says what to do next.
 * `exitCode` is what the CLI exits with when the error reaches it.
 */
export class RlaifError extends Error {
  readonly code: string;
  readonly exitCode: number;

  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RlaifError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** The input cannot be converted: a missing or unreadable file, not parquet, wrong columns. Nothing was written. */
export class InputError extends RlaifError {
  readonly file: string | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; file?: string } = {}) {
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
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
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

  constructor(code: string, message: string, options: { cause?: unknown; status?: number; url?: string; exitCode?: number } = {}) {
    super(code, message, { cause: options.cause, exitCode: options.exitCode ?? 1 });
    this.name = 'HubError';
    this.status = options.status;
    this.url = options.url;
  }
}
