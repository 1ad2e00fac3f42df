/** What the Talk page shows, as a pure reducer over the call's events. */
import type { Role, ServerMessage } from "./protocol";

export type Phase = "idle" | "connecting" | "live" | "ended" | "failed";

export interface Line {
  id: number;
  role: Role;
  text: string;
  final: boolean;
}

export interface TalkError {
  code: string;
  message: string;
}

export interface TalkState {
  phase: Phase;
  sessionId: string | null;
  outputRate: number | null;
  transcript: Line[];
  node: string | null;
  outcome: string | null;
  /** Where the workflow transferred the caller (the page shows it; dialling is the app's). */
  transferTo: string | null;
  error: TalkError | null;
  /** How many times the agent was cut off (`clear`). */
  interruptions: number;
  nextLineId: number;
}

export type TalkEvent =
  | { type: "start" }
  | { type: "session"; sessionId: string }
  | { type: "server"; message: ServerMessage }
  | { type: "failed"; error: TalkError }
  | { type: "hangup" }
  | { type: "dismiss" }
  | { type: "closed"; code?: number; reason?: string };

export const initialTalkState: TalkState = {
  phase: "idle",
  sessionId: null,
  outputRate: null,
  transcript: [],
  node: null,
  outcome: null,
  transferTo: null,
  error: null,
  interruptions: 0,
  nextLineId: 1,
};

/** A transcript update: replaces the role's pending partial, or appends a new line. */
export function addTranscript(lines: Line[], nextId: number, role: Role, text: string, final: boolean): [Line[], number] {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i];
    if (line && line.role === role && !line.final) {
      const updated = lines.slice();
      updated[i] = { ...line, text, final };
      return [updated, nextId];
    }
  }
  return [[...lines, { id: nextId, role, text, final }], nextId + 1];
}

function onServer(state: TalkState, message: ServerMessage): TalkState {
  switch (message.type) {
    case "ready":
      return { ...state, phase: state.phase === "connecting" ? "live" : state.phase, outputRate: message.output_sample_rate };
    case "transcript": {
      const [transcript, nextLineId] = addTranscript(state.transcript, state.nextLineId, message.role, message.text, message.final);
      return { ...state, transcript, nextLineId };
    }
    case "node":
      return { ...state, node: message.id };
    case "clear":
      return { ...state, interruptions: state.interruptions + 1 };
    case "transfer":
      return { ...state, transferTo: message.target };
    case "end":
      return state.phase === "failed" ? state : { ...state, phase: "ended", outcome: message.outcome };
    case "error":
      // Shown, but the call goes on unless the server closes it (see `closed`).
      return { ...state, error: { code: message.code, message: message.message } };
  }
}

export function talkReducer(state: TalkState, event: TalkEvent): TalkState {
  switch (event.type) {
    case "start":
      return { ...initialTalkState, phase: "connecting" };
    case "session":
      return { ...state, sessionId: event.sessionId };
    case "server":
      return onServer(state, event.message);
    case "failed":
      return { ...state, phase: "failed", error: event.error };
    case "hangup":
      return state.phase === "ended" || state.phase === "failed" ? state : { ...state, phase: "ended", outcome: "hangup" };
    case "dismiss":
      return { ...state, error: null, phase: state.phase === "failed" ? "idle" : state.phase };
    case "closed":
      // A socket that closes without `end` or `error` while live is a lost connection.
      if (state.phase === "live" || state.phase === "connecting") {
        if (state.error !== null) return { ...state, phase: "failed" };
        const why = event.reason ? `: ${event.reason}` : "";
        const code = event.code !== undefined && event.code !== 1000 && event.code !== 1005 ? ` (close code ${event.code}${why})` : why;
        return { ...state, phase: "failed", error: { code: "connection_closed", message: `The connection to the voice session closed${code}.` } };
      }
      return state;
  }
}
