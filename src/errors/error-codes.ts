import { refusalCatalogue, type RefusalCode } from './refusal-catalogue';

/**
 * Codes a transaction can end with that are not refusals: nothing of the gateway's own is
 * written for them (the consumer went away before its reply was complete).
 */
export const nonRefusalCodes = {
  /** The consumer closed its connection before the reply was complete (status 499, or the provider's status once sent). */
  CLIENT_ABORTED: 'CLIENT_ABORTED',
} as const;

export type NonRefusalCode = (typeof nonRefusalCodes)[keyof typeof nonRefusalCodes];

/** Every code a transaction's `errorCode` can hold, '' for none (a forwarded reply). */
export type ErrorCode = RefusalCode | NonRefusalCode | '';

/**
 * Every error code by name, the refusal catalogue's and the others: code that ends a
 * transaction names its code through this, so none is an inline string.
 */
export const ERROR_CODES: { readonly [K in RefusalCode]: K } & typeof nonRefusalCodes = Object.freeze({
  ...(Object.fromEntries(Object.keys(refusalCatalogue).map((code) => [code, code])) as { readonly [K in RefusalCode]: K }),
  ...nonRefusalCodes,
});
