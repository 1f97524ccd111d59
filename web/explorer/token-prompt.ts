/**
 * The token prompt: shown when the API answers 401 (tokens are configured and the page
 * has none, or not a valid one). The token typed is kept for this tab's session only.
 */
import { byId } from './dom';
import { forgetToken, readToken, saveToken } from './token-store';

export function initTokenPrompt(onToken: () => void): void {
  const form = byId<HTMLFormElement>('token-form');
  const input = byId<HTMLInputElement>('token');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token === '') {
      byId('token-why').textContent = 'Type the token first: the field is empty.';
      input.focus();
      return;
    }
    saveToken(token);
    input.value = '';
    byId('token-section').hidden = true;
    updateForgetButton();
    onToken();
  });
  byId<HTMLButtonElement>('token-forget').addEventListener('click', () => {
    forgetToken();
    // A fresh page: no audit data fetched with that token stays on the screen (a shared desk).
    location.reload();
  });
  updateForgetButton();
}

/** Asks for a token (again): a stored one the gateway refused is dropped first. */
export function showTokenPrompt(why: string): void {
  if (readToken() !== null) forgetToken();
  updateForgetButton();
  const section = byId('token-section');
  byId('token-why').textContent = why;
  const wasHidden = section.hidden;
  section.hidden = false;
  if (wasHidden) byId<HTMLInputElement>('token').focus();
}

function updateForgetButton(): void {
  byId('token-forget').hidden = readToken() === null;
}
