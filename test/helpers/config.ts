// What loadConfig says is wrong with an environment.
import { expect } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

/** The problems of the ConfigError that loadConfig(env) throws; fails the test if it throws anything else or nothing. */
export function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected loadConfig to throw a ConfigError');
}
