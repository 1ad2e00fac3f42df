/** The voice session's audio WebSocket protocol: JSON text frames from the server. */

export type Role = "user" | "agent";

export type ServerMessage =
  | { type: "ready"; input_sample_rate: number; output_sample_rate: number }
  | { type: "transcript"; role: Role; text: string; final: boolean }
  | { type: "node"; id: string }
  | { type: "clear" }
  | { type: "transfer"; target: string; mode: string }
  | { type: "end"; outcome: string }
  | { type: "error"; code: string; message: string };

export type ClientMessage = { type: "hangup" };

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (m: Json, key: string): string | null => (typeof m[key] === "string" ? m[key] : null);
const positive = (m: Json, key: string): number | null => {
  const v = m[key];
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : null;
};

/** Parses one text frame; null for anything that is not a message of the protocol. */
export function parseServerMessage(text: string): ServerMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(m)) return null;
  switch (m["type"]) {
    case "ready": {
      const input = positive(m, "input_sample_rate") ?? 16000;
      const output = positive(m, "output_sample_rate");
      return output === null ? null : { type: "ready", input_sample_rate: input, output_sample_rate: output };
    }
    case "transcript": {
      const role = m["role"];
      const text = str(m, "text");
      if ((role !== "user" && role !== "agent") || text === null) return null;
      return { type: "transcript", role, text, final: m["final"] !== false };
    }
    case "node": {
      const id = str(m, "id");
      return id === null ? null : { type: "node", id };
    }
    case "clear":
      return { type: "clear" };
    case "transfer": {
      const target = str(m, "target");
      return target === null ? null : { type: "transfer", target, mode: str(m, "mode") ?? "cold" };
    }
    case "end":
      return { type: "end", outcome: str(m, "outcome") ?? String(m["outcome"] ?? "ended") };
    case "error":
      return {
        type: "error",
        code: str(m, "code") ?? "error",
        message: str(m, "message") ?? "The voice session failed.",
      };
    default:
      return null;
  }
}

/** The WebSocket URL for `audioUrl`, which may be absolute (ws/wss/http/https) or a path. */
export function resolveAudioUrl(audioUrl: string, page: { protocol: string; host: string }): string {
  const wsScheme = page.protocol === "https:" ? "wss:" : "ws:";
  if (audioUrl.startsWith("/")) return `${wsScheme}//${page.host}${audioUrl}`;
  if (audioUrl.startsWith("http://")) return `ws://${audioUrl.slice("http://".length)}`;
  if (audioUrl.startsWith("https://")) return `wss://${audioUrl.slice("https://".length)}`;
  return audioUrl;
}
