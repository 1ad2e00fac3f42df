import { type FormEvent, useState } from "react";
import { login } from "../api";

interface Props {
  apiKey: string;
  onApiKey: (key: string) => void;
  onLoggedIn: () => void;
  onError: (message: string) => void;
}

/** An API key (kept in this tab's sessionStorage) or a login that sets the session cookie. */
export function AuthPanel({ apiKey, onApiKey, onLoggedIn, onError }: Props) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    try {
      await login(email, password);
      setPassword("");
      onLoggedIn();
    } catch (err) {
      onError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-label="Sign in">
      <h2>Sign in</h2>
      <label>
        API key{" "}
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          placeholder="vf_…"
          value={apiKey}
          onChange={(e) => onApiKey(e.target.value)}
        />
      </label>
      <p className="hint">Kept for this tab only. Leave it empty to use your login instead:</p>
      <form className="row" onSubmit={(e) => void submit(e)}>
        <input aria-label="Email" type="email" placeholder="email" value={email} onChange={(e) => setEmail(e.target.value)} />
        <input aria-label="Password" type="password" placeholder="password" value={password} onChange={(e) => setPassword(e.target.value)} />
        <button type="submit" disabled={busy || !email || !password}>
          Log in
        </button>
      </form>
    </section>
  );
}
