/** The few API calls the Talk page makes. Errors are RFC 9457 problems: show their detail. */

export type Auth = { kind: "key"; key: string } | { kind: "cookie" };

export interface Agent {
  id: string;
  name: string;
}

export interface VoiceSession {
  session_id: string;
  audio_url: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

function headers(auth: Auth, json: boolean): HeadersInit {
  const h: Record<string, string> = { Accept: "application/json" };
  if (json) h["Content-Type"] = "application/json";
  if (auth.kind === "key") h["Authorization"] = `Bearer ${auth.key}`;
  return h;
}

async function call<T>(auth: Auth, method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(auth, body !== undefined),
      credentials: "same-origin",
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new ApiError(0, `Cannot reach the server (${String(err)}).`);
  }
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below when the status is an error
  }
  if (!response.ok) throw new ApiError(response.status, problemMessage(response.status, data));
  return data as T;
}

/** The human-readable part of a problem+json body. */
export function problemMessage(status: number, data: unknown): string {
  if (typeof data === "object" && data !== null) {
    const d = data as Record<string, unknown>;
    const detail = typeof d["detail"] === "string" ? d["detail"] : null;
    const title = typeof d["title"] === "string" ? d["title"] : null;
    if (detail && title) return `${title}: ${detail}`;
    if (detail ?? title) return (detail ?? title) as string;
  }
  return `The server answered ${status}.`;
}

export async function listAgents(auth: Auth): Promise<Agent[]> {
  const page = await call<{ items?: unknown }>(auth, "GET", "/v1/agents?limit=200");
  const items = Array.isArray(page?.items) ? page.items : [];
  return items.filter(
    (a): a is Agent =>
      typeof a === "object" && a !== null && typeof (a as Agent).id === "string" && typeof (a as Agent).name === "string",
  );
}

export async function createVoiceSession(auth: Auth, agentId: string): Promise<VoiceSession> {
  const s = await call<Partial<VoiceSession> | null>(auth, "POST", "/v1/sessions", {
    agent_id: agentId,
    mode: "voice",
    transport: "websocket",
  });
  if (!s || typeof s.session_id !== "string" || typeof s.audio_url !== "string") {
    throw new ApiError(500, "The server did not return an audio URL for the voice session.");
  }
  return { session_id: s.session_id, audio_url: s.audio_url };
}

export async function login(email: string, password: string): Promise<void> {
  await call<unknown>({ kind: "cookie" }, "POST", "/v1/auth/login", { email, password });
}
