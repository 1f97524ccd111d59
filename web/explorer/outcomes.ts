/**
 * The outcomes a transaction can end with (src/transaction OUTCOMES; a unit test keeps
 * the two lists equal), each with words for people. Kept free of DOM code so that test
 * can import it.
 */
export const OUTCOME_WORDS: Readonly<Record<string, string>> = {
  forwarded: 'forwarded to the provider',
  denied: 'refused by the gateway',
  upstream_error: 'provider error',
  upstream_timeout: 'provider timed out',
  client_aborted: 'consumer went away',
  client_timeout: 'consumer too slow',
  interrupted: 'interrupted (gateway stopped)',
  diagnosed: 'diagnosed (checked, not sent)',
  in_flight: 'in flight',
};

/**
 * Chart line per outcome: colours after Okabe and Ito's palette (told apart with the common
 * kinds of colour blindness), darkened where needed to at least 3:1 on white, and a dash
 * pattern each, so no line is known by its colour alone.
 */
export const OUTCOME_LINES: Readonly<Record<string, { colour: string; dash: number[] }>> = {
  forwarded: { colour: '#0072B2', dash: [] },
  denied: { colour: '#D55E00', dash: [10, 4] },
  upstream_error: { colour: '#B0508A', dash: [2, 3] },
  upstream_timeout: { colour: '#9E6A00', dash: [10, 3, 2, 3] },
  client_aborted: { colour: '#00805C', dash: [6, 6] },
  client_timeout: { colour: '#6A3D9A', dash: [14, 4, 4, 4] },
  interrupted: { colour: '#000000', dash: [3, 8] },
  diagnosed: { colour: '#5C6BC0', dash: [1, 2, 6, 2] },
  in_flight: { colour: '#6B6B6B', dash: [1, 4] },
};
