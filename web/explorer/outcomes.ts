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
  in_flight: 'in flight',
};

/** Chart colours per outcome: distinct for the common kinds of colour blindness (Okabe and Ito's palette), dark enough on white. */
export const OUTCOME_COLOURS: Readonly<Record<string, string>> = {
  forwarded: '#0072B2',
  denied: '#D55E00',
  upstream_error: '#CC79A7',
  upstream_timeout: '#E69F00',
  client_aborted: '#009E73',
  client_timeout: '#56B4E9',
  interrupted: '#000000',
  in_flight: '#777777',
};
