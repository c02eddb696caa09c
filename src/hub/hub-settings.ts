import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { HubError } from '../errors.js';
import { httpFetch } from './http-fetch.js';
import type { RetryOptions } from './retry-fetch.js';

/** Where the Hub is and who we are to it, read the way Python's huggingface_hub reads them. */
export interface HubSettings {
  /** The Hub's base URL, without a trailing slash: `HF_ENDPOINT`, else https://huggingface.co. */
  hubUrl: string;
  /** The token, or undefined when none was found (enough for public downloads). Never print it. */
  accessToken: string | undefined;
  /** Where the token came from, to say so in messages without showing it. */
  tokenSource: string | null;
  /** The Hugging Face cache (`HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`). */
  cacheDir: string;
  /** The fetch every Hub call goes through, before retries are added: a streaming one on `node:http` by default. */
  fetch: typeof fetch;
  /** How 429, 5xx and dropped connections are retried. */
  retry: RetryOptions;
  /** `HF_HUB_OFFLINE` is set: read datasets from the cache only, as huggingface_hub does, and never call the Hub. */
  offline: boolean;
}

export interface HubSettingsOptions {
  /** A token given on the command line; it wins over the environment and the token file. */
  token?: string | undefined;
  /** The environment to read (default `process.env`); tests pass their own. */
  env?: NodeJS.ProcessEnv;
  /** Default: {@link httpFetch}. */
  fetch?: typeof fetch;
  retry?: RetryOptions;
}

export const DEFAULT_HUB_URL = 'https://huggingface.co';

function hfHome(env: NodeJS.ProcessEnv): string {
  return env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'huggingface');
}

/** The token file `huggingface-cli login` / `hf auth login` writes. */
export function tokenFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_TOKEN_PATH ?? path.join(hfHome(env), 'token');
}

function checkToken(token: string, source: string): string {
  const trimmed = token.trim();
  if (!trimmed.startsWith('hf_')) {
    throw new HubError('ERR_HUB_BAD_TOKEN', `The token from ${source} does not look like a Hugging Face token (they start with "hf_").`, {
      exitCode: 2,
    });
  }
  return trimmed;
}

/**
 * Reads the Hub endpoint, token and cache directory: the token from `options.token`, else `HF_TOKEN`, else the token
 * file under `HF_HOME` (or `HF_TOKEN_PATH`); the endpoint from `HF_ENDPOINT`; the cache from `HF_HUB_CACHE` or
 * `HF_HOME`. Files Python's huggingface_hub downloaded are found in the same cache.
 *
 * @throws {HubError} `ERR_HUB_BAD_TOKEN` when a token is found that is not a Hugging Face token.
 */
export async function hubSettings(options: HubSettingsOptions = {}): Promise<HubSettings> {
  const env = options.env ?? process.env;
  const hubUrl = (env.HF_ENDPOINT ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  const cacheDir = env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE ?? path.join(hfHome(env), 'hub');
  let accessToken: string | undefined;
  let tokenSource: string | null = null;
  if (options.token !== undefined && options.token !== '') {
    tokenSource = '--token';
    accessToken = checkToken(options.token, tokenSource);
  } else if (env.HF_TOKEN !== undefined && env.HF_TOKEN !== '') {
    tokenSource = 'HF_TOKEN';
    accessToken = checkToken(env.HF_TOKEN, tokenSource);
  } else {
    const file = tokenFile(env);
    const stored = await readFile(file, 'utf8').catch(() => '');
    if (stored.trim() !== '') {
      tokenSource = file;
      accessToken = checkToken(stored, file);
    }
  }
  // RLAIF_V_HUB_FETCH=builtin: Node's own fetch instead, for comparison only (npm run bench:push): it holds a whole
  // request body in memory.
  const fetch = options.fetch ?? (env.RLAIF_V_HUB_FETCH === 'builtin' ? globalThis.fetch : (httpFetch as typeof globalThis.fetch));
  const offline = ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
  return { hubUrl, accessToken, tokenSource, cacheDir, fetch, retry: options.retry ?? {}, offline };
}

/**
 * The token, for calls that need one (pushing). Called before any work starts, so a missing token costs nothing.
 *
 * @throws {HubError} `ERR_HUB_NO_TOKEN` saying how to log in.
 */
export function requireToken(settings: HubSettings, action: string, env: NodeJS.ProcessEnv = process.env): string {
  if (settings.accessToken !== undefined) return settings.accessToken;
  throw new HubError(
    'ERR_HUB_NO_TOKEN',
    `${action} needs a Hugging Face token with write access, and none was found. Log in with \`hf auth login\` ` +
      `(or \`huggingface-cli login\`), which writes ${tokenFile(env)}; or set HF_TOKEN; or pass --token. ` +
      'Create a token at https://huggingface.co/settings/tokens.',
    { exitCode: 2 },
  );
}

/**
 * The same settings with every Hub request tied to `signal`: aborting it stops a request in flight and the wait
 * before a retry at once (Ctrl-C was ignored for as long as the retries of a Hub that cannot be reached lasted).
 */
export function withSignal(settings: HubSettings, signal: AbortSignal | undefined): HubSettings {
  if (signal === undefined) return settings;
  const fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    settings.fetch(input, { ...init, signal: init?.signal == null ? signal : AbortSignal.any([init.signal, signal]) });
  return { ...settings, fetch: fetch as typeof globalThis.fetch };
}
