export type { ConfigSource, SourceUpdate } from './source.js';
export { FileSource } from './file-source.js';
export type { FileSourceOptions } from './file-source.js';
export { InlineSource } from './inline-source.js';
export type { InlineSourceOptions } from './inline-source.js';
// parseConfigText: import it from './parse-config-text.js' when needed (it loads the YAML parser).
export type { ParsedConfigText } from './parse-config-text.js';
