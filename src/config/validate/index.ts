export { validateDocument } from './validate-document.js';
export type { ValidateOptions, ValidationResult } from './validate-document.js';
export { parseDuration } from '../../duration.js';
export { CEL_RULES } from './cel-rules.js';
export type { CelRuleImplementation, EnforcedCelRule, UnenforcedCelRule } from './cel-rules.js';
export { didYouMean } from './did-you-mean.js';
