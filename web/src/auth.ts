/** The API key lives in sessionStorage (this tab only); without one, the login cookie is used. */
import type { Auth } from "./api";

const KEY = "voxflow.apiKey";

export function loadApiKey(): string {
  try {
    return sessionStorage.getItem(KEY) ?? "";
  } catch {
    return "";
  }
}

export function saveApiKey(key: string): void {
  try {
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
  } catch {
    // storage disabled: the key lasts as long as the page
  }
}

export function authFor(apiKey: string): Auth {
  const key = apiKey.trim();
  return key ? { kind: "key", key } : { kind: "cookie" };
}
