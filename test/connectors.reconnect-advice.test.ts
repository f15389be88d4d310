// What a connector waiting for a reconnect tells the operator to do depends on
// where its key lives: the environment, or the registry (sealed, set with set-key).
import { describe, expect, it } from 'vitest';
import { reconnectPending, type ConnectorRow } from '../src/db/connectors.js';
import { ConnectorDeletedError } from '../src/errors.js';

const refused = (source: 'env' | 'registry') =>
  ({
    name: 'staging',
    status: 'reconnect_required',
    status_reason: 'Tines answered 401.',
    refused_key_fingerprint: 'sha256:aa',
    source,
  }) as unknown as ConnectorRow;

describe('a connector waiting for a reconnect', () => {
  it('with the same key: the environment connector is told to change TINES_API_KEY', () => {
    const m = reconnectPending(refused('env'), 'sha256:aa');
    expect(m).toMatch(/TINES_API_KEY or TINES_API_KEY_FILE/);
    expect(m).not.toMatch(/set-key/);
  });

  it('with the same key: a registered connector is told to use connectors set-key, not the environment', () => {
    const m = reconnectPending(refused('registry'), 'sha256:aa');
    expect(m).toMatch(/connectors set-key staging --key-file FILE/);
    expect(m).toMatch(/reconnect --connector staging/);
    expect(m).not.toMatch(/TINES_API_KEY/);
  });

  it('with another key: nothing pending, the sync calls Tines', () => {
    expect(reconnectPending(refused('registry'), 'sha256:bb')).toBeUndefined();
  });
});

describe('a connector deleted while served', () => {
  it('the environment one waits for a restart with it configured; a registered one is simply no longer synced', () => {
    expect(new ConnectorDeletedError('tines', 1).message).toMatch(/restarted with it configured/);
    expect(new ConnectorDeletedError('staging', 2, 'registry').message).toMatch(/removed from the registry .* no longer synced/);
    expect(new ConnectorDeletedError('staging', 2, 'registry').message).not.toMatch(/restarted/);
  });
});
