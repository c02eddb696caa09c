import { HubApiError } from '@huggingface/hub';
import { HubError } from '../errors.js';
import type { HubSettings } from './hub-settings.js';
import { errorCode } from './retry-fetch.js';

/** What to add to a "not found": a private or gated repo looks absent to a caller without a token. */
export function loginHint(settings: HubSettings): string {
  return settings.accessToken === undefined ? ' If it is private or gated, log in (`hf auth login`) or set HF_TOKEN.' : '';
}

/**
 * The {@link HubError} for a failed call to the Hub: turns the library's API errors (`HubApiError`) and a Hub that
 * cannot be reached (`fetch failed`) into messages that say what to do; any other error is returned as it is. `task`
 * picks the advice for a Hub that cannot be reached: a download can do without it (HF_HUB_OFFLINE=1 converts what the
 * cache holds), a push cannot.
 */
export function fromHubFailure(error: unknown, what: string, settings: HubSettings, task: 'download' | 'push' = 'download'): unknown {
  if (error instanceof TypeError && /fetch failed/.test(error.message)) {
    const unresolved = errorCode(error) === 'ENOTFOUND';
    const host = URL.canParse(settings.hubUrl) ? new URL(settings.hubUrl).hostname : settings.hubUrl;
    const problem = unresolved
      ? `the name ${host} does not resolve (ENOTFOUND): no network, or a typo in HF_ENDPOINT (${settings.hubUrl})`
      : `${error.message.replace(/^fetch failed:?\s*/, '') || 'no answer'}, after retries`;
    const advice =
      task === 'push'
        ? 'A push needs the Hub: check the connection and HF_ENDPOINT, then run the same command again (it resumes).'
        : 'Check the connection and HF_ENDPOINT; to convert files already in the Hugging Face cache without the network, set HF_HUB_OFFLINE=1.';
    return new HubError('ERR_HUB_UNREACHABLE', `${what}: cannot reach the Hub at ${settings.hubUrl} (${problem}). ${advice}`, { cause: error });
  }
  if (!(error instanceof HubApiError)) return error;
  const status = error.statusCode;
  if (status === 401) {
    const message =
      settings.accessToken === undefined
        ? `${what}: the Hub at ${settings.hubUrl} wants a token (401): the repo may be private or gated. Log in with \`hf auth login\`, or set HF_TOKEN.`
        : `${what}: the Hub at ${settings.hubUrl} refused the token from ${settings.tokenSource ?? '--token'} (401). Log in again with \`hf auth login\` or set HF_TOKEN.`;
    return new HubError('ERR_HUB_UNAUTHORIZED', message, { cause: error, status, url: error.url, exitCode: 2 });
  }
  if (status === 403) {
    return new HubError('ERR_HUB_FORBIDDEN', `${what}: the token from ${settings.tokenSource ?? 'nowhere'} may not do this (403). Use a token with write access to the repo.`, { cause: error, status, url: error.url, exitCode: 2 });
  }
  return new HubError('ERR_HUB_REQUEST', `${what}: the Hub at ${settings.hubUrl} answered ${status}: ${error.message}.${status === 404 ? loginHint(settings) : ''}`, {
    cause: error,
    status,
    url: error.url,
  });
}
