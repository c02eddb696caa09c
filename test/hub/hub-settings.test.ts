import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { HubError } from '../../src/errors.js';
import { hubSettings, requireToken } from '../../src/hub/hub-settings.js';
import { tempDir } from '../support/fixtures.js';

describe('hubSettings', () => {
  it('takes --token over HF_TOKEN over the token file, and says where it came from', async () => {
    const home = await tempDir();
    await writeFile(path.join(home, 'token'), 'hf_fromfile\n');
    const env = { HF_HOME: home, HF_TOKEN: 'hf_fromenv' };
    assert.equal((await hubSettings({ env, token: 'hf_fromflag' })).accessToken, 'hf_fromflag');
    const fromEnv = await hubSettings({ env });
    assert.equal(fromEnv.accessToken, 'hf_fromenv');
    assert.equal(fromEnv.tokenSource, 'HF_TOKEN');
    const fromFile = await hubSettings({ env: { HF_HOME: home } });
    assert.equal(fromFile.accessToken, 'hf_fromfile');
    assert.equal(fromFile.tokenSource, path.join(home, 'token'));
  });

  it('reads HF_TOKEN_PATH, HF_ENDPOINT and the cache under HF_HOME or HF_HUB_CACHE', async () => {
    const home = await tempDir();
    const tokenPath = path.join(home, 'elsewhere');
    await writeFile(tokenPath, 'hf_pathtoken');
    const settings = await hubSettings({ env: { HF_HOME: home, HF_TOKEN_PATH: tokenPath, HF_ENDPOINT: 'http://hub.local:8080/' } });
    assert.equal(settings.accessToken, 'hf_pathtoken');
    assert.equal(settings.hubUrl, 'http://hub.local:8080');
    assert.equal(settings.cacheDir, path.join(home, 'hub'));
    assert.equal((await hubSettings({ env: { HF_HOME: home, HF_HUB_CACHE: '/x/cache' } })).cacheDir, '/x/cache');
    const bare = await hubSettings({ env: { HF_HOME: home } });
    assert.equal(bare.hubUrl, 'https://huggingface.co');
    assert.equal(bare.accessToken, undefined);
  });

  it('refuses a token that is not a Hugging Face token, without showing it', async () => {
    await assert.rejects(hubSettings({ env: {}, token: 'secret-value' }), (error: unknown) => {
      assert.ok(error instanceof HubError);
      assert.equal(error.code, 'ERR_HUB_BAD_TOKEN');
      assert.doesNotMatch(error.message, /secret-value/);
      return true;
    });
  });
});

describe('requireToken', () => {
  it('says how to log in when there is no token', async () => {
    const home = await tempDir();
    const settings = await hubSettings({ env: { HF_HOME: home } });
    assert.throws(
      () => requireToken(settings, 'Pushing to me/x', { HF_HOME: home }),
      (error: unknown) =>
        error instanceof HubError &&
        error.code === 'ERR_HUB_NO_TOKEN' &&
        error.exitCode === 2 &&
        /hf auth login/.test(error.message) &&
        /HF_TOKEN/.test(error.message) &&
        error.message.includes(path.join(home, 'token')),
    );
  });
});
