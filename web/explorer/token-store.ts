/**
 * The admin token, kept for this browser tab's session only (sessionStorage: gone when
 * the tab closes, never shared with other tabs, never sent as a cookie). It is the only
 * thing the page ever stores. Where the browser blocks storage it lives in memory, for as
 * long as the page is open.
 */
const KEY = 'spine-gateway-admin-token';
let inMemory: string | null = null;

export function readToken(): string | null {
  try {
    return sessionStorage.getItem(KEY) ?? inMemory;
  } catch {
    return inMemory;
  }
}

export function saveToken(token: string): void {
  inMemory = token;
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // blocked storage: kept in memory only
  }
}

export function forgetToken(): void {
  inMemory = null;
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing was stored
  }
}
