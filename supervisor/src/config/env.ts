// Environment variables the Go egress reads for its config, with the same precedence.

export type ConfigSource = { kind: 'body'; text: string } | { kind: 'file'; path: string };

/** An inline body beats a file, whichever of flag or env var supplies each. */
export function configSource(opts: { file?: string; body?: string }, env: NodeJS.ProcessEnv): ConfigSource | undefined {
  const body = opts.body || env.EGRESS_CONFIG_BODY;
  if (body) return { kind: 'body', text: body };
  const path = opts.file || env.EGRESS_CONFIG_FILE;
  return path ? { kind: 'file', path } : undefined;
}

/** YAML key -> env var that supplies it when the YAML leaves it out. */
export const ENV_FALLBACKS = {
  api_key: 'LIVEKIT_API_KEY',
  api_secret: 'LIVEKIT_API_SECRET',
  ws_url: 'LIVEKIT_WS_URL',
} as const;

/**
 * Applied to the raw YAML before validation, so a value from the environment is checked like one from the
 * file. A key present in the YAML wins even when empty, as in Go (the env only seeds the default).
 */
export function withEnvFallbacks(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const merged = { ...raw };
  for (const [key, name] of Object.entries(ENV_FALLBACKS)) {
    const value = env[name];
    if (merged[key] === undefined && value) merged[key] = value;
  }
  return merged;
}
