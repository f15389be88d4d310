// `reconnect`: one authenticated call to Tines; on success the connector is active again.
import { readApiKey } from '../config.js';
import { keyFingerprint, recordKeyRefused, recordReconnected, registerConnector, registration } from '../db/connectors.js';
import { errorMessage, TinesAuthError } from '../errors.js';
import { createTinesClient } from '../tines/client.js';
import type { CommandContext } from './context.js';

export async function reconnectCommand(ctx: CommandContext): Promise<number> {
  const db = await ctx.db();
  const apiKey = readApiKey(ctx.config);
  const fingerprint = keyFingerprint(apiKey);
  const connector = await registerConnector(db, registration(ctx.config, fingerprint));
  const client = createTinesClient(ctx.config, ctx.config.tines.baseUrl, apiKey, ctx.log);
  try {
    const { count } = await client.checkAccess();
    const from = await recordReconnected(db, connector.id);
    ctx.out(
      `Tines accepted the key ${fingerprint} for ${ctx.config.tines.tenantDomain}${count !== null ? ` (${count} users)` : ''}. ` +
        `Connector "${ctx.config.connectorName}" is active${from ? ` again (was ${from})` : ''}; the next sync runs as scheduled.`,
    );
    return 0;
  } catch (err) {
    if (err instanceof TinesAuthError) {
      await recordKeyRefused(db, connector.id, err.message, fingerprint);
      ctx.out(`still refused: ${err.message}`);
      return 3;
    }
    ctx.out(`reconnect could not reach Tines: ${errorMessage(err)}`);
    return 1;
  }
}
