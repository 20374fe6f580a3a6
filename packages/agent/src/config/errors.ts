/** Bad configuration (a flag, an environment variable or the config file): the message says which and why. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'INVALID_CONFIG'
}
