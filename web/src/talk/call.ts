/**
 * One voice call: creates the session, opens the audio WebSocket, streams the microphone and
 * plays the agent. Reports what happens as TalkEvents; the page renders them.
 */
import { type Auth, ApiError, createVoiceSession } from "../api";
import { type Microphone, loadMicWorklet, openMicrophone } from "../audio/mic";
import { Player } from "../audio/player";
import { type ClientMessage, parseServerMessage, resolveAudioUrl } from "./protocol";
import type { TalkEvent } from "./reducer";

export interface CallStats {
  framesSent: number;
  bytesSent: number;
  chunksReceived: number;
  /** Output level now and the highest seen (peak absolute sample, 0..1). */
  outputLevel: number;
  outputPeak: number;
  playing: boolean;
  /** Seconds of agent audio queued ahead of what is playing. */
  buffered: number;
  clears: number;
}

const METER_MS = 25;
/** How long to wait for the server's `end` after a hang-up before closing the socket. */
const HANGUP_GRACE_MS = 2000;

export class VoiceCall {
  readonly stats: CallStats = {
    framesSent: 0,
    bytesSent: 0,
    chunksReceived: 0,
    outputLevel: 0,
    outputPeak: 0,
    playing: false,
    buffered: 0,
    clears: 0,
  };
  private context: AudioContext | null = null;
  private socket: WebSocket | null = null;
  private mic: Microphone | null = null;
  private player: Player | null = null;
  private meter: ReturnType<typeof setInterval> | null = null;
  private finished = false;

  constructor(
    private readonly dispatch: (event: TalkEvent) => void,
    private readonly onLevel: (level: number) => void = () => {},
  ) {}

  /** Call from the click handler itself: the AudioContext must be created in the gesture. */
  async start(auth: Auth, agentId: string): Promise<void> {
    this.dispatch({ type: "start" });
    const context = new AudioContext();
    this.context = context;
    try {
      if (context.state !== "running") await context.resume();
      const session = await createVoiceSession(auth, agentId);
      if (this.finished) return;
      this.dispatch({ type: "session", sessionId: session.session_id });
      await loadMicWorklet(context);
      if (this.finished) return;
      await this.connect(resolveAudioUrl(session.audio_url, window.location));
    } catch (err) {
      this.fail(err instanceof ApiError ? "api_error" : "start_failed", errorText(err));
    }
  }

  private connect(url: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error("Cannot open the audio connection."));
      socket.onmessage = (event: MessageEvent<string | ArrayBuffer>) => this.onMessage(event.data);
      socket.onclose = (event: CloseEvent) => {
        this.socket = null;
        this.stopMic();
        reject(new Error(`The audio connection closed (code ${event.code}).`));
        if (!this.finished) {
          this.finished = true;
          this.dispatch({ type: "closed", code: event.code, reason: event.reason });
          this.release();
        }
      };
    });
  }

  private onMessage(data: string | ArrayBuffer): void {
    if (typeof data !== "string") {
      this.stats.chunksReceived++;
      this.player?.enqueue(data);
      return;
    }
    const message = parseServerMessage(data);
    if (message === null) return;
    this.dispatch({ type: "server", message });
    switch (message.type) {
      case "ready":
        this.onReady(message.output_sample_rate);
        break;
      case "clear":
        this.stats.clears++;
        this.player?.clear();
        break;
      case "end":
        this.finish(false);
        break;
      // An error frame alone does not end the call (a provider failed, a frame was bad): the
      // server closes the socket when it does.
      default:
        break;
    }
  }

  private onReady(outputRate: number): void {
    const context = this.context;
    if (context === null || this.player !== null) return;
    this.player = new Player(context, outputRate);
    this.meter = setInterval(() => this.measure(), METER_MS);
    openMicrophone(context, (frame) => this.send(frame))
      .then((mic) => {
        if (this.finished) mic.stop();
        else this.mic = mic;
      })
      .catch((err: unknown) => this.fail("microphone", `Cannot use the microphone: ${errorText(err)}`));
  }

  private send(frame: ArrayBuffer): void {
    const socket = this.socket;
    if (socket === null || socket.readyState !== WebSocket.OPEN || this.finished) return;
    socket.send(frame);
    this.stats.framesSent++;
    this.stats.bytesSent += frame.byteLength;
  }

  private measure(): void {
    const player = this.player;
    if (player === null) return;
    const level = player.level();
    this.stats.outputLevel = level;
    this.stats.outputPeak = Math.max(this.stats.outputPeak, level);
    this.stats.playing = player.playing;
    this.stats.buffered = this.context ? Math.max(0, player.endsAt - this.context.currentTime) : 0;
    this.onLevel(level);
  }

  /** The user hangs up: stop talking and listening, tell the server, wait briefly for `end`. */
  hangup(): void {
    if (this.finished) return;
    const socket = this.socket;
    this.stopMic();
    this.player?.clear();
    this.dispatch({ type: "hangup" });
    if (socket !== null && socket.readyState === WebSocket.OPEN) {
      const message: ClientMessage = { type: "hangup" };
      socket.send(JSON.stringify(message));
      setTimeout(() => this.finish(true), HANGUP_GRACE_MS);
    } else {
      this.finish(true);
    }
  }

  /** Ends the call locally; lets queued agent audio finish unless `now`. */
  private finish(now: boolean): void {
    if (this.finished && this.socket === null) return;
    this.finished = true;
    this.stopMic();
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) {
      socket.onclose = null;
      socket.close();
    }
    if (now) this.player?.clear();
    const tail = this.player && this.context ? Math.max(0, this.player.endsAt - this.context.currentTime) : 0;
    setTimeout(() => this.release(), tail * 1000 + 100);
  }

  private fail(code: string, message: string): void {
    if (this.finished) return;
    this.dispatch({ type: "failed", error: { code, message } });
    this.finish(true);
  }

  private stopMic(): void {
    this.mic?.stop();
    this.mic = null;
  }

  private release(): void {
    if (this.meter !== null) clearInterval(this.meter);
    this.meter = null;
    this.stats.playing = false;
    this.onLevel(0);
    this.player?.close();
    this.player = null;
    const context = this.context;
    this.context = null;
    void context?.close().catch(() => {});
  }

  /** Tear down at once (the page unmounts). */
  dispose(): void {
    this.finish(true);
    this.release();
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
