// `reconnect`: one authenticated call to Tines; on success the connector is active again.
import { readApiKey } from '../config.js';
import { keyFingerprint, registerConnector, setConnectorStatus } from '../db/connectors.js';
import { errorMessage, TinesAuthError } from '../errors.js';
import { registration } from '../sync/run-sync.js';
import { createTinesClient } from '../tines/client.js';
import { reconnectTarget } from '../connectors/connect.js';
import { targetByName } from '../connectors/registry.js';
import { ConnectorNotFoundError } from '../errors.js';
import { refusal } from './connectors.js';
import { connectorArg, type CommandContext } from './context.js';

/** `reconnect --connector NAME` for a registered connector: its sealed key, tried once. */
async function reconnectRegistered(ctx: CommandContext, name: string): Promise<number> {
  const db = await ctx.db();
  let target;
  try {
    target = await targetByName(db, ctx.config, name);
  } catch (err) {
    if (!(err instanceof ConnectorNotFoundError)) throw err;
    process.stderr.write(`tines-connector reconnect: ${err.message}\n`);
    return 2;
  }
  try {
    const { count, from, fingerprint } = await reconnectTarget({ config: ctx.config, db, log: ctx.log }, target);
    ctx.out(
      `Tines accepted the key ${fingerprint} for ${target.tenantDomain}${count !== null ? ` (${count} users)` : ''}. ` +
        `Connector "${name}" is active${from && from !== 'active' ? ` again (was ${from})` : ''}; the next sync runs as scheduled.`,
    );
    return 0;
  } catch (err) {
    if (err instanceof TinesAuthError) {
      ctx.out(`still refused: ${refusal(err)}; give it a new key with \`tines-connector connectors set-key ${name} --key-stdin\``);
      return 3;
    }
    ctx.out(`reconnect could not reach Tines: ${errorMessage(err)}`);
    return 1;
  }
}

export async function reconnectCommand(ctx: CommandContext): Promise<number> {
  const named = connectorArg(ctx.args);
  if (named !== undefined && named !== ctx.config.connectorName) return reconnectRegistered(ctx, named);
  const db = await ctx.db();
  const apiKey = readApiKey(ctx.config);
  const fingerprint = keyFingerprint(apiKey);
  const connector = await registerConnector(db, registration(ctx.config, fingerprint));
  const client = createTinesClient(ctx.config, ctx.config.tines.baseUrl, apiKey, ctx.log);
  try {
    const { count } = await client.checkAccess();
    await db.query('UPDATE connectors SET consecutive_failures = 0, updated_at = now() WHERE id = $1', [connector.id]);
    const from = await setConnectorStatus(db, connector.id, 'active', null);
    ctx.out(
      `Tines accepted the key ${fingerprint} for ${ctx.config.tines.tenantDomain}${count !== null ? ` (${count} users)` : ''}. ` +
        `Connector "${ctx.config.connectorName}" is active${from && from !== 'active' ? ` again (was ${from})` : ''}; the next sync runs as scheduled.`,
    );
    return 0;
  } catch (err) {
    if (err instanceof TinesAuthError) {
      await setConnectorStatus(db, connector.id, 'reconnect_required', err.message, { refusedFingerprint: fingerprint });
      ctx.out(`still refused: ${err.message}`);
      return 3;
    }
    ctx.out(`reconnect could not reach Tines: ${errorMessage(err)}`);
    return 1;
  }
}
