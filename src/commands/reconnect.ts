// `reconnect`: one authenticated call to Tines; on success the connector is active again.
// With the embedded database held by a running daemon, the daemon does it (with its key).
import { readApiKey, type Config } from '../config.js';
import { keyFingerprint, recordKeyRefused, recordReconnected, registerConnector, registration } from '../db/connectors.js';
import type { Database } from '../db/database.js';
import { reconnectThroughGateway, type ReconnectOutcome } from '../daemon/local-gateway.js';
import { CommandRefusal, DataDirBusyError, errorMessage, TinesAuthError } from '../errors.js';
import type { Logger } from '../log.js';
import { createTinesClient } from '../tines/client.js';
import { callAdminSocket } from '../connectors/admin-client.js';
import { reconnectTarget } from '../connectors/connect.js';
import { targetByName } from '../connectors/registry.js';
import { ConnectorNotFoundError } from '../errors.js';
import type { Settings } from '../config.js';
import { refusal } from './connectors.js';
import type { CommandContext } from './context.js';
import { visible } from './format.js';
import { connectorNameOf } from './sync.js';

/** The key in force, tried once against Tines; the connector's state records the answer. */
export async function reconnect(config: Config, db: Database, log: Logger): Promise<ReconnectOutcome> {
  const apiKey = readApiKey(config);
  const fingerprint = keyFingerprint(apiKey);
  const connector = await registerConnector(db, registration(config, fingerprint));
  const client = createTinesClient(config, config.tines.baseUrl, apiKey, log);
  try {
    const { count } = await client.checkAccess();
    const from = await recordReconnected(db, connector.id);
    return {
      result: 'accepted',
      fingerprint,
      message:
        `Tines accepted the key ${fingerprint} for ${config.tines.tenantDomain}${count !== null ? ` (${count} users)` : ''}. ` +
        `Connector "${config.connectorName}" is active${from ? ` again (was ${from})` : ''}; the next sync runs as scheduled.`,
    };
  } catch (err) {
    if (err instanceof TinesAuthError) {
      await recordKeyRefused(db, connector.id, err.message, fingerprint);
      return { result: 'refused', fingerprint, message: `still refused: ${visible(err.message)}` };
    }
    // What came from Tines (or the network) is shown escaped; the message's own line breaks stay.
    return {
      result: 'unreachable',
      fingerprint,
      message: `reconnect could not reach Tines: ${visible(errorMessage(err))} (is TINES_TENANT_DOMAIN right, and is the tenant reachable from here?)`,
    };
  }
}

const EXIT: Record<ReconnectOutcome['result'], number> = { accepted: 0, unreachable: 1, refused: 3 };

/** `reconnect --connector NAME` for a registered connector: its sealed key, tried once. */
async function reconnectRegistered(ctx: CommandContext<Settings>, name: string): Promise<number> {
  let db: Database;
  try {
    db = await ctx.db();
  } catch (err) {
    // The embedded database is held by a running daemon: it makes the call, through its admin socket.
    if (!(err instanceof DataDirBusyError)) throw err;
    const answer = await callAdminSocket(ctx.config.database.dataDir, 'POST', `/api/connectors/${encodeURIComponent(name)}/reconnect`, {});
    if (!answer) throw err;
    const done = `\n  (done by the daemon that holds ${ctx.config.database.dataDir})`;
    if (answer.status === 200) {
      ctx.out(`Tines accepted the key for connector "${visible(name)}"; it is active.${done}`);
      return 0;
    }
    throw new CommandRefusal(
      `${visible(answer.body.error?.message ?? `the daemon answered ${answer.status}`)}${done}`,
      answer.status === 422 ? 3 : answer.status === 404 ? 2 : 1,
    );
  }
  let target;
  try {
    target = await targetByName(db, ctx.config, name);
  } catch (err) {
    if (!(err instanceof ConnectorNotFoundError)) throw err;
    throw new CommandRefusal(err.message, 2);
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
      throw new CommandRefusal(
        `still refused: ${visible(refusal(err))}; give it a new key with \`tines-connector connectors set-key ${visible(name)} --key-stdin\``,
        3,
      );
    }
    throw new CommandRefusal(`reconnect could not reach Tines: ${visible(errorMessage(err))}`, 1);
  }
}

export async function reconnectCommand(ctx: CommandContext<Settings>): Promise<number> {
  const name = connectorNameOf(ctx);
  if (name !== ctx.config.connectorName || !ctx.config.tines.tenantDomain) return reconnectRegistered(ctx, name);
  return reconnectEnvironment(ctx as CommandContext<Config>);
}

async function reconnectEnvironment(ctx: CommandContext<Config>): Promise<number> {
  let db: Database;
  try {
    db = await ctx.db();
  } catch (err) {
    // The embedded database is held by a running daemon: it makes the call, with the key it uses.
    if (!(err instanceof DataDirBusyError)) throw err;
    const outcome = await reconnectThroughGateway(ctx.config.database.dataDir, ctx.config.connectorName);
    if (!outcome) throw err;
    let mine: string | undefined;
    try {
      mine = keyFingerprint(readApiKey(ctx.config));
    } catch {
      mine = undefined;
    }
    const keyNote =
      mine && mine !== outcome.fingerprint
        ? `\n  note: this shell's key is ${mine}, the daemon's is ${outcome.fingerprint}: the daemon reads its key from its own environment ` +
          '(TINES_API_KEY_FILE is re-read before each call; a changed TINES_API_KEY needs a restart of the daemon)'
        : '';
    return answer(ctx, outcome, `\n  (done by the daemon that holds ${ctx.config.database.dataDir})${keyNote}`);
  }
  return answer(ctx, await reconnect(ctx.config, db, ctx.log));
}

/** Accepted: the answer on stdout. Refused or unreachable: a failure, said once on stderr like every command's. */
function answer(ctx: CommandContext<Config>, outcome: ReconnectOutcome, more = ''): number {
  if (outcome.result === 'accepted') {
    ctx.out(`${outcome.message}${more}`);
    return 0;
  }
  throw new CommandRefusal(`${outcome.message}${more}`, EXIT[outcome.result]);
}
